"""The money commands of the CLI, talking to an in-process node."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from suanli.cli import client as cli_client
from suanli.cli.main import app as cli
from tests.billing.conftest import PROGRAMME, TARIFF


@pytest.fixture
def run(client, monkeypatch):  # type: ignore[no-untyped-def]
    """Run `suanli ...` as a tenant, its HTTP calls going to the test app."""
    def request(method, url, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.pop("timeout", None)
        return client.request(method, url.removeprefix("http://testserver"), **kwargs)

    monkeypatch.setattr(cli_client.httpx, "request", request)
    runner = CliRunner()

    def invoke(tenant, *args: str):  # type: ignore[no-untyped-def]
        env = {"SUANLI_URL": "http://testserver", "SUANLI_API_KEY": tenant.key,
               "COLUMNS": "200"}
        return runner.invoke(cli, list(args), env=env)

    return invoke


def test_an_operator_funds_and_grants_and_a_tenant_reads_its_money(run, world, start_up,
                                                                   tmp_path: Path) -> None:
    op = world.operator
    deposit = run(op, "wallet", "deposit", start_up.id, "12345", "--key", "bank-1")
    assert deposit.exit_code == 0, deposit.output
    assert "123.45 CNY" in deposit.output
    shown = run(start_up, "wallet", "show")
    assert "prepaid" in shown.output and "available 123.45 CNY" in shown.output
    (tmp_path / "programme.json").write_text(json.dumps(PROGRAMME))
    assert run(op, "programmes", "create", str(tmp_path / "programme.json")).exit_code == 0
    granted = run(op, "programmes", "grant", PROGRAMME["id"], start_up.id, "500", "--key", "g")
    assert granted.exit_code == 0 and "5.00 CNY" in granted.output
    assert "5.00 CNY left" in run(start_up, "programmes", "vouchers").output
    (tmp_path / "tariff.json").write_text(json.dumps(TARIFF))
    tariff = run(world.provider, "tariffs", "set", world.pool_id, str(tmp_path / "tariff.json"))
    assert tariff.exit_code == 0 and "version 1" in tariff.output
    assert "fair device-hour price" in run(start_up, "tariffs", "guidance",
                                           world.pool_id).output
    bill = run(start_up, "bills", "show", "2026-11", "--format", "csv")
    assert bill.exit_code == 0 and bill.output.startswith("period,tenant_id,usage_record_id")
    check = run(op, "ledger", "check")
    assert check.exit_code == 0 and "the books balance" in check.output
    refused = run(start_up, "ledger", "check")
    assert refused.exit_code == 1 and "403" in refused.output

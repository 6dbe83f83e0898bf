"""The audit log (issue 12, finding 8): every admin and money action, taken or refused, is
appended with who, what, when, target, idempotency key and outcome; operators read it; the
database refuses to change or delete an entry."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, text, update

from suanli.adapters.store.audit_tables import AuditRow
from tests.api.conftest import Tenant


def _audit(client: TestClient, operator: Tenant, **params: str) -> list[dict]:
    response = client.get("/v1/audit", headers=operator.headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_money_and_admin_actions_are_recorded_taken_or_refused(
        client: TestClient, operator: Tenant, consumer: Tenant) -> None:
    deposit = client.post(f"/v1/tenants/{consumer.id}/deposits", json={"amount_fen": 5000},
                          headers={**operator.headers, "Idempotency-Key": "dep-1"})
    assert deposit.status_code == 201
    again = client.post(f"/v1/tenants/{consumer.id}/deposits", json={"amount_fen": 5000},
                        headers={**operator.headers, "Idempotency-Key": "dep-1"})
    assert again.status_code == 200
    refused = client.post(f"/v1/tenants/{consumer.id}/deposits", json={"amount_fen": 5000},
                          headers={**consumer.headers, "Idempotency-Key": "self-1"})
    assert refused.status_code == 403
    made = client.post("/v1/keys", headers=consumer.headers, json={"scopes": ["read"]}).json()
    client.get("/v1/wallet", headers=consumer.headers)  # a read: not an action

    entries = _audit(client, operator)
    deposits = [e for e in entries if e["action"] == "wallet.deposit"]
    assert [(e["status"], e["idempotency_key"], e["actor"]["tenant_id"]) for e in deposits] == [
        (201, "dep-1", operator.id), (200, "dep-1", operator.id), (403, "self-1", consumer.id)]
    assert deposits[0]["target"] == f"tenant_id={consumer.id}"
    assert deposits[0]["outcome"] == "ok" and deposits[1]["outcome"] == "ok"
    assert deposits[2]["outcome"].startswith("refused: Forbidden")
    assert deposits[0]["actor"]["key_id"] and deposits[0]["actor"]["role"] == "operator"
    assert deposits[0]["at"] == "2026-11-02T08:00:00+00:00"
    [key_entry] = [e for e in entries if e["action"] == "key.create"]
    assert key_entry["target"] == f"tenant_id={consumer.id},key_id={made['key_id']}"
    assert made["api_key"] not in str(entries)  # the secret never reaches the log
    assert not any(e["method"] == "GET" for e in entries)
    assert [e["id"] for e in _audit(client, operator, action="wallet.deposit",
                                    actor=consumer.id)] == [deposits[2]["id"]]


def test_only_operators_read_the_audit_log(client: TestClient, consumer: Tenant,
                                           operator: Tenant) -> None:
    assert client.get("/v1/audit", headers=consumer.headers).status_code == 403
    read_only = client.post("/v1/keys", headers=operator.headers,
                            json={"scopes": ["read"]}).json()["api_key"]
    assert client.get("/v1/audit",
                      headers={"Authorization": f"Bearer {read_only}"}).status_code == 403
    refused = client.post(f"/v1/tenants/{consumer.id}/deposits", json={"amount_fen": 1},
                          headers={"Authorization": f"Bearer {read_only}",
                                   "Idempotency-Key": "no-scope"})
    assert refused.status_code == 403
    [entry] = _audit(client, operator, action="wallet.deposit")  # refused for scope: audited
    assert entry["idempotency_key"] == "no-scope" and "scope" in entry["outcome"]


def test_the_database_refuses_to_change_or_delete_an_entry(
        client: TestClient, operator: Tenant, consumer: Tenant, database) -> None:  # type: ignore[no-untyped-def]
    client.put(f"/v1/tenants/{consumer.id}/billing-mode", json={"mode": "postpaid"},
               headers=operator.headers)
    [entry] = _audit(client, operator, action="wallet.billing-mode")
    for statement in (update(AuditRow).where(AuditRow.id == entry["id"]).values(outcome="x"),
                      delete(AuditRow).where(AuditRow.id == entry["id"])):
        with pytest.raises(Exception, match="append-only"), \
                database.engine.begin() as connection:
            connection.execute(statement)
    with database.engine.connect() as connection:
        assert connection.execute(text("SELECT outcome FROM audit_log WHERE id = :id"),
                                  {"id": entry["id"]}).scalar_one() == "ok"

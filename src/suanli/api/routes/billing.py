"""Money over HTTP: wallets, the ledger, tariffs, price guidance, vouchers, usage, bills."""

from __future__ import annotations

from dataclasses import fields
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import HTMLResponse, PlainTextResponse

from suanli.adapters.store import ledger as ledger_store
from suanli.api.billing_schemas import (
    AccountDetailOut,
    AccountOut,
    BillingModeIn,
    ChargeOut,
    DepositIn,
    DepositOut,
    FindingOut,
    GrantIn,
    GuidanceOut,
    LedgerCheckOut,
    ProgrammeIn,
    ProgrammeOut,
    TariffIn,
    TariffOut,
    TransferOut,
    UsageIngestOut,
    UsageRecordIn,
    VoucherOut,
)
from suanli.api.context import AppContext, context, principal
from suanli.domain.accounts import receivable_account_id, wallet_account_id
from suanli.domain.billing_records import ProgrammeRecord, UsageCharge, VoucherRecord
from suanli.domain.errors import Forbidden, NotFound, ValidationFailed
from suanli.domain.ledger import Account, Transfer, TransferRecord
from suanli.domain.tenants import Principal
from suanli.services import tenants
from suanli.services.billing import statements as bills
from suanli.services.billing import tariffs as tariff_store
from suanli.services.billing import vouchers as vouchers_store
from suanli.services.billing import wallets as billing
from suanli.services.metering import usage as usage_ingest

router = APIRouter(prefix="/v1", tags=["billing"])
Ctx = Annotated[AppContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]
IdempotencyKey = Annotated[str, Header(alias="Idempotency-Key", max_length=128)]
TenantQuery = Annotated[str | None, Query(max_length=72,
                                          description="operators: another tenant's")]


def account_out(account: Account) -> AccountOut:
    return AccountOut(id=account.id, kind=account.kind.value, balance_fen=account.balance_fen,
                      available_fen=account.available_fen,
                      debits_posted_fen=account.debits_posted_fen,
                      credits_posted_fen=account.credits_posted_fen,
                      debits_pending_fen=account.debits_pending_fen,
                      credits_pending_fen=account.credits_pending_fen,
                      debits_must_not_exceed_credits=account.debits_must_not_exceed_credits,
                      credits_must_not_exceed_debits=account.credits_must_not_exceed_debits)


def transfer_out(record: TransferRecord) -> TransferOut:
    t = record.transfer
    return TransferOut(id=t.id, kind=t.kind.value, code=t.code, state=record.state.value,
                       debit_account_id=record.debit_account_id,
                       credit_account_id=record.credit_account_id, amount_fen=record.amount_fen,
                       pending_id=t.pending_id, reference=t.reference,
                       timestamp=record.timestamp, expires_at=record.expires_at)


def _wallet_out(view: billing.WalletView) -> dict[str, Any]:
    return {"tenant_id": view.tenant_id, "billing_mode": view.mode,
            "wallet": account_out(view.wallet), "held_fen": view.wallet.debits_pending_fen,
            "receivable": None if view.receivable is None else account_out(view.receivable)}


# -- wallets ---------------------------------------------------------------------------------

@router.get("/wallet", tags=["wallets"])
def get_wallet(ctx: Ctx, caller: Caller, tenant_id: TenantQuery = None) -> dict[str, Any]:
    """Your wallet (operators: any tenant's with ?tenant_id=)."""
    with ctx.db.unit_of_work() as session:
        return _wallet_out(billing.wallet(session, caller, tenant_id))


@router.post("/tenants/{tenant_id}/deposits", status_code=201, response_model=DepositOut,
             tags=["wallets"])
def deposit(tenant_id: str, body: DepositIn, response: Response, ctx: Ctx, caller: Caller,
            idempotency_key: IdempotencyKey) -> dict[str, Any]:
    """Operators record money paid in; the same Idempotency-Key again is the same deposit
    (200), a different amount under it a 409."""
    with ctx.db.unit_of_work() as session:
        record, created = billing.deposit(session, caller, tenant_id, body.amount_fen,
                                          idempotency_key, ctx.clock.now(),
                                          billing.check_reference(body.reference))
        if not created:
            response.status_code = 200
        view = billing.wallet(session, caller, tenant_id)
        return {"transfer": transfer_out(record), "wallet": _wallet_out(view)}


@router.put("/tenants/{tenant_id}/billing-mode", tags=["wallets"])
def set_billing_mode(tenant_id: str, body: BillingModeIn, ctx: Ctx,
                     caller: Caller) -> dict[str, str]:
    """Operators choose prepaid (wallet and holds) or postpaid (usage due on the bill)."""
    with ctx.db.unit_of_work() as session:
        mode = billing.set_billing_mode(session, caller, tenant_id, body.mode, ctx.clock.now())
        return {"tenant_id": tenant_id, "billing_mode": mode}


# -- ledger ----------------------------------------------------------------------------------

def _readable_account(caller: Principal, account_id: str) -> str:
    Transfer(account_id, account_id, "x", 1, "check")  # validates the id like the ledger
    own = {wallet_account_id(caller.tenant_id),
           receivable_account_id(caller.tenant_id)}
    if not caller.is_operator and account_id not in own:
        raise Forbidden("you may only read your own accounts")
    return account_id


@router.get("/ledger/accounts/{account_id:path}", response_model=AccountDetailOut,
            tags=["ledger"])
def get_account(account_id: str, ctx: Ctx, caller: Caller,
                limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
    """An account's balances and its latest transfers (yours, or any for an operator)."""
    try:
        _readable_account(caller, account_id)
    except ValidationFailed as exc:
        raise ValidationFailed(exc.detail, field="account_id") from None
    with ctx.db.unit_of_work() as session:
        account = ledger_store.get_account(session, account_id)
        if account is None:
            raise NotFound(f"account {account_id} does not exist", field="account_id")
        records = ledger_store.account_transfers(session, account_id, limit=limit)
        return {"account": account_out(account), "transfers": [transfer_out(r) for r in records]}


@router.get("/ledger/check", response_model=LedgerCheckOut, tags=["ledger"])
def check_ledger(ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """Operators: run the ledger's invariant check (debits == credits, flags, balances ==
    transfers, each hold settled at most once)."""
    if not caller.is_operator:
        raise Forbidden("only an operator runs the ledger check")
    with ctx.db.unit_of_work() as session:
        report = ledger_store.check_invariants(session)
        return {**report.__dict__, "ok": report.ok}


# -- tariffs and price guidance --------------------------------------------------------------

def _tariff_out(pool_id: str, found: tariff_store.PoolTariff) -> dict[str, Any]:
    return {"pool_id": pool_id, "version": found.version,
            "source": "list-price" if found.version is None else "tariff",
            "created_at": found.created_at,
            "tariff": tariff_store.to_document(found.tariff)}


@router.put("/pools/{pool_id}/tariff", response_model=TariffOut, tags=["tariffs"])
def put_tariff(pool_id: str, body: TariffIn, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """The pool's provider sets its tariff (a new version; running jobs keep theirs)."""
    with ctx.db.unit_of_work() as session:
        found = tariff_store.set_tariff(session, caller, pool_id, body.model_dump(),
                                        ctx.clock.now())
        return _tariff_out(found.tariff.pool_id, found)


@router.get("/pools/{pool_id}/tariff", response_model=TariffOut, tags=["tariffs"])
def get_tariff(pool_id: str, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    with ctx.db.unit_of_work() as session:
        found = tariff_store.get_tariff(session, pool_id)
        return _tariff_out(found.tariff.pool_id, found)


@router.get("/pools/{pool_id}/price-guidance", response_model=GuidanceOut, tags=["tariffs"])
def get_price_guidance(
    pool_id: str, ctx: Ctx, caller: Caller,
    capex_fen: Annotated[int | None, Query(ge=0, le=10**11)] = None,
    lifetime_hours: Annotated[int | None, Query(ge=1, le=20 * 8760)] = None,
    utilisation: Annotated[str | None, Query(max_length=12)] = None,
    operations_fen_per_device_hour: Annotated[str | None, Query(max_length=24)] = None,
    min_margin: Annotated[str | None, Query(max_length=12)] = None,
    max_margin: Annotated[str | None, Query(max_length=12)] = None,
    basis: Annotated[str | None, Query(max_length=24)] = None,
) -> dict[str, Any]:
    """Cost per device-hour at the pool's site (PUE, electricity, catalog TDP, amortisation,
    operations, utilisation) and a fair price band; flags the pool's list prices outside it."""
    def dec(value: str | None, name: str) -> Decimal | None:
        return None if value is None else tariff_store.parse_decimal(value, name)

    with ctx.db.unit_of_work() as session:
        g = tariff_store.guidance(
            session, pool_id, capex_fen=capex_fen, lifetime_hours=lifetime_hours,
            utilisation=dec(utilisation, "utilisation"),
            operations_fen_per_device_hour=dec(operations_fen_per_device_hour,
                                               "operations_fen_per_device_hour"),
            min_margin=dec(min_margin, "min_margin"), max_margin=dec(max_margin, "max_margin"),
            basis=basis)
        model = g.model
        return {
            "pool_id": g.pool_id, "basis": g.band.basis.value,
            "inputs": {name: str(getattr(model, name)) for name in (
                "capex_fen", "lifetime_hours", "device_power_kw", "pue",
                "electricity_fen_per_kwh", "operations_fen_per_device_hour", "utilisation",
                "units_per_device_hour")},
            "defaults_used": list(g.defaults_used),
            "costs": {f.name: str(getattr(g.costs, f.name)) for f in fields(g.costs)},
            "low_fen": str(g.band.low_fen), "high_fen": str(g.band.high_fen),
            "tariff_id": g.tariff.tariff.id,
            "findings": [FindingOut(field=f.field, unit_price_fen=str(f.unit_price_fen),
                                    verdict=f.verdict.value) for f in g.findings],
            "within_band": g.within_band,
        }


# -- voucher programmes ----------------------------------------------------------------------

def _programme_out(session: Any, row: ProgrammeRecord) -> dict[str, Any]:
    standing = vouchers_store.standing(session, row)
    programme = vouchers_store.programme_from_row(row)
    return {"id": row.id, "name": row.name, "issuer": row.issuer, "budget_fen": row.budget_fen,
            "coverage": str(programme.coverage),
            "western_extra_coverage": str(programme.western_extra_coverage),
            "cap_fen_per_tenant": row.cap_fen_per_tenant,
            "eligible_tenant_classes": row.eligible_tenant_classes,
            "eligible_hubs": row.eligible_hubs, "eligible_provinces": row.eligible_provinces,
            "eligible_provider_ids": row.eligible_provider_ids,
            "valid_from": programme.valid_from, "valid_until": programme.valid_until,
            "fund_account_id": row.fund_account_id, **standing.__dict__}


def _voucher_out(row: VoucherRecord) -> VoucherOut:
    return VoucherOut.model_validate(row, from_attributes=True)


@router.post("/programmes", status_code=201, response_model=ProgrammeOut, tags=["vouchers"])
def create_programme(body: ProgrammeIn, response: Response, ctx: Ctx,
                     caller: Caller) -> dict[str, Any]:
    """Operators create a voucher programme (补贴计划) and fund its budget."""
    with ctx.db.unit_of_work() as session:
        row, created = vouchers_store.create_programme(session, caller, body.model_dump(),
                                                       ctx.clock.now())
        if not created:
            response.status_code = 200
        return _programme_out(session, row)


@router.get("/programmes", response_model=list[ProgrammeOut], tags=["vouchers"])
def list_programmes(ctx: Ctx, caller: Caller,
                    limit: Annotated[int, Query(ge=1, le=200)] = 50,
                    offset: Annotated[int, Query(ge=0, le=100_000)] = 0) -> list[dict[str, Any]]:
    """Programmes are public policy: every tenant may read them."""
    with ctx.db.unit_of_work() as session:
        return [_programme_out(session, r)
                for r in vouchers_store.list_programmes(session, limit, offset)]


@router.get("/programmes/{programme_id}", response_model=ProgrammeOut, tags=["vouchers"])
def get_programme(programme_id: str, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    with ctx.db.unit_of_work() as session:
        return _programme_out(session, vouchers_store.get_programme(session, programme_id))


@router.post("/programmes/{programme_id}/grants", status_code=201, response_model=VoucherOut,
             tags=["vouchers"])
def grant_voucher(programme_id: str, body: GrantIn, response: Response, ctx: Ctx,
                  caller: Caller, idempotency_key: IdempotencyKey) -> VoucherOut:
    """Operators grant a tenant a voucher (算力券) from the programme."""
    with ctx.db.unit_of_work() as session:
        row, created = vouchers_store.grant(
            session, caller, programme_id, tenant_id=body.tenant_id,
            granted_fen=body.granted_fen, idempotency_key=idempotency_key,
            now=ctx.clock.now(), valid_until=body.valid_until)
        if not created:
            response.status_code = 200
        return _voucher_out(row)


@router.get("/programmes/{programme_id}/grants", response_model=list[VoucherOut],
            tags=["vouchers"])
def list_grants(programme_id: str, ctx: Ctx, caller: Caller,
                limit: Annotated[int, Query(ge=1, le=200)] = 100,
                offset: Annotated[int, Query(ge=0, le=100_000)] = 0) -> list[VoucherOut]:
    if not caller.is_operator:
        raise Forbidden("only an operator lists a programme's grants")
    with ctx.db.unit_of_work() as session:
        return [_voucher_out(r)
                for r in vouchers_store.grants_of(session, programme_id, limit, offset)]


@router.get("/vouchers", response_model=list[VoucherOut], tags=["vouchers"])
def my_vouchers(ctx: Ctx, caller: Caller, tenant_id: TenantQuery = None) -> list[VoucherOut]:
    """Your vouchers and what remains of each."""
    with ctx.db.unit_of_work() as session:
        target = tenants.scoped_tenant(caller, tenant_id)
        return [_voucher_out(r) for r in vouchers_store.vouchers_of(session, target)]


# -- usage records from elsewhere ------------------------------------------------------------

def _charge_out(row: UsageCharge | Any) -> ChargeOut | None:
    """A stored charge (metering may still hand over its stored row: same fields)."""
    return None if row is None else ChargeOut.model_validate(row, from_attributes=True)


@router.post("/usage-records", status_code=201, response_model=UsageIngestOut, tags=["usage"])
def post_usage_record(body: UsageRecordIn, response: Response, ctx: Ctx,
                      caller: Caller) -> dict[str, Any]:
    """A usage record of a lease on your pools (from your own meters): stored and charged.
    The same record again is `duplicate` (200); another under the same id is 409; one whose
    billing period closed more than 72 hours ago is 422."""
    with ctx.db.unit_of_work() as session:
        result = usage_ingest.ingest(
            session, caller, record_id=body.id, lease_id=body.lease_id, start=body.start,
            end=body.end, now=ctx.clock.now(), device_count=body.device_count,
            measured_energy_wh=body.measured_energy_wh)
        if result.outcome.value == "duplicate":
            response.status_code = 200
        return {"id": result.record.id, "outcome": result.outcome.value,
                "lease_id": result.record.lease_id, "job_id": result.record.job_id,
                "charge": _charge_out(result.charge)}


# -- bills -----------------------------------------------------------------------------------

BillFormat = Annotated[str, Query(pattern="^(json|csv|html)$", description="json, csv or html")]


@router.get("/bills/{period}", tags=["bills"], response_model=None)
def get_bill(period: str, ctx: Ctx, caller: Caller, tenant_id: TenantQuery = None,
             format: BillFormat = "json") -> Any:
    """Your bill for a month (YYYY-MM, Asia/Shanghai): a line per job's usage record with
    pool, units, tier and time-of-use items, vouchers applied; totals; the wallet's movement."""
    with ctx.db.unit_of_work() as session:
        bill = bills.statement(session, caller, period, tenant_id)
    if format == "csv":
        return PlainTextResponse(bills.to_csv(bill), media_type="text/csv",
                                 headers={"Content-Disposition":
                                          f'attachment; filename="bill-{period}.csv"'})
    if format == "html":
        return HTMLResponse(bills.to_html(bill))
    return bill.as_json()


@router.get("/payouts/{period}", tags=["bills"])
def get_payout(period: str, ctx: Ctx, caller: Caller,
               tenant_id: TenantQuery = None) -> dict[str, Any]:
    """A provider's payout statement for a month: paid by tenants, by vouchers, fee, net."""
    with ctx.db.unit_of_work() as session:
        return bills.payout(session, caller, period, tenant_id).as_json()

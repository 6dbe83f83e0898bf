"""A provider with an A800 pool in Ningxia, buyers with money, and helpers that call the
market's services the way the API does (one unit of work per call)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from suanli.adapters.clock import FixedClock
from suanli.adapters.store import Database
from suanli.bootstrap import parse_authority
from suanli.domain.market.orders import OrderRequest, Shape, Side
from suanli.domain.tenants import Principal, Role, TenantClass
from suanli.services import tenants
from suanli.services.billing import wallets
from suanli.services.market import checks, exchange, resale, sweep
from suanli.services.registry import inventory as registry

ACCELERATOR = "nvidia-a800-sxm4-80gb"
SITE = {"name": "Zhongwei DC", "province": "CN-NX", "city": "Zhongwei", "latitude": 37.5,
        "longitude": 105.2, "pue": "1.15", "electricity_fen_per_kwh": 32, "green_share": "0.7",
        "kind": "hub", "hub": "ningxia"}
H = 3600


def block(clock: FixedClock, hours_ahead: int) -> int:
    """The start (epoch s) of the hour block `hours_ahead` hours after the current one."""
    now_s = int(clock.now().timestamp())
    return now_s - now_s % H + hours_ahead * H


@dataclass
class Market:
    db: Database
    clock: FixedClock
    operator: Principal
    seller: Principal
    pool_id: str
    make_buyer: Callable[..., Principal]

    def order(self, who: Principal, side: Side, price: int, start_s: int, count: int, *,
              hours: int = 1, client: str, **changes: Any) -> exchange.OrderView:
        request = OrderRequest(side, changes.pop("accelerator_class", ACCELERATOR),
                               changes.pop("location", "ningxia"), price,
                               Shape(((start_s, start_s + hours * H),), (count,)), client,
                               pool_id=self.pool_id if side is Side.ASK else None, **changes)
        with self.db.unit_of_work() as session:
            placed, _ = exchange.place(session, who, request, self.clock.now())
        return placed

    def resell(self, who: Principal, reservation_id: str, price: int, count: int, *,
               client: str, **changes: Any) -> exchange.OrderView:
        with self.db.unit_of_work() as session:
            placed, _ = resale.resell(session, who, reservation_id,
                                      price_fen_per_unit_hour=price, count=count,
                                      client_order_id=client, now=self.clock.now(), **changes)
        return placed

    def cancel(self, who: Principal, order_id: str) -> exchange.OrderView:
        with self.db.unit_of_work() as session:
            return exchange.cancel(session, who, order_id, self.clock.now())

    def sweep(self) -> sweep.SweepReport:
        with self.db.unit_of_work() as session:
            return sweep.sweep(session, self.clock.now())

    def wallet(self, who: Principal) -> Any:
        with self.db.unit_of_work() as session:
            return wallets.wallet(session, self.operator, who.tenant_id)

    def check(self) -> checks.MarketCheck:
        with self.db.unit_of_work() as session:
            return checks.check(session)


@pytest.fixture
def market(database: Database, clock: FixedClock) -> Market:
    return build_market(database, clock)


def build_market(database: Database, clock: FixedClock) -> Market:
    authority = parse_authority("CN")
    now = clock.now()
    with database.unit_of_work() as session:
        operator = tenants.create_tenant(session, authority, "operator", Role.OPERATOR,
                                         TenantClass.PUBLIC, now)
        seller = tenants.create_tenant(session, authority, "West Cloud", Role.PROVIDER,
                                       TenantClass.ENTERPRISE, now)
        seller_principal = Principal(seller.tenant_id, Role.PROVIDER)
        provider = registry.create_provider(session, seller_principal, authority,
                                            name="West Cloud", kind="cloud", now=now)
        site = registry.create_site(session, seller_principal, provider.id, SITE, now)
        pool = registry.create_pool(session, seller_principal, site.id, accelerator=ACCELERATOR,
                                    fields={"name": "a800", "device_count": 8,
                                            "engine": "local",
                                            "price_fen_per_device_hour": 900}, now=now)
        pool_id = pool.id
    operator_principal = Principal(operator.tenant_id, Role.OPERATOR)

    def make_buyer(name: str = "buyer", deposit_fen: int = 1_000_000) -> Principal:
        with database.unit_of_work() as session:
            buyer = tenants.create_tenant(session, authority, name, Role.CONSUMER,
                                          TenantClass.START_UP, clock.now())
            if deposit_fen:
                wallets.deposit(session, operator_principal, buyer.tenant_id, deposit_fen,
                                f"dep-{buyer.tenant_id.replace('*', 'x')}", clock.now())
        return Principal(buyer.tenant_id, Role.CONSUMER)

    return Market(database, clock, operator_principal, seller_principal, pool_id, make_buyer)


def at(clock: FixedClock, moment_s: int) -> None:
    """Move the clock to an instant (never backwards)."""
    target = datetime.fromtimestamp(moment_s, UTC)
    assert target >= clock.now()
    clock.advance((target - clock.now()) / timedelta(seconds=1))

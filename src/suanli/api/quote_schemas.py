"""Bodies of the quote endpoint and of a job's cost (money as integer fen, quantities as text)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class EstimateOut(BaseModel):
    tariff_id: str
    basis: str = Field(description="device-hour or compute-unit-hour")
    quantity: str = Field(description="devices x time limit, in the tariff's basis")
    estimated_cost_fen: int | None = Field(
        description="the charge under the tariff in force if the job runs its whole time "
                    "limit from now (a job that ends sooner costs less); null when too large "
                    "to rate as one record")
    hold_fen: int = Field(description="what a prepaid wallet must have available to place it")
    note: str = ""


class QuoteOptionOut(BaseModel):
    rank: int
    pool_id: str
    accelerator: str
    province: str
    city: str
    hub: str | None
    free_devices: int
    price_fen_per_device_hour: int = Field(description="the pool's list price")
    estimate: EstimateOut
    score: float | None = Field(description="the placement's score (lower is better)")
    placement: dict[str, Any] = Field(
        description="the placement's breakdown: policy, score terms in fen-equivalents, "
                    "estimated start and finish, energy, carbon, rtt_ms to the users, "
                    "the reason")
    quote_id: str = Field(default="", description="name it as the job's quote_id to accept "
                          "this option (valid for ten minutes, for this spec)")
    allocations: list[tuple[str, int]] = Field(
        default_factory=list, description="(pool id, devices); several for a gang")


class QuoteOut(BaseModel):
    time_limit_s: int
    devices: int
    candidates: int = Field(description="pools of this platform that could take the job now")
    options: list[QuoteOptionOut]
    message: str = ""


class JobCostOut(BaseModel):
    estimated_cost_fen: int | None = Field(
        description="at placement: the charge for the whole time limit, tariff in force")
    records: int = Field(description="usage records charged so far")
    device_hours: str
    compute_unit_hours: str
    amount_fen: int = Field(description="rated under the tariff")
    discount_fen: int = Field(description="paid by vouchers")
    payable_fen: int

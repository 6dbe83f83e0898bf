"""The compute exchange (算力交易): orders against pool capacity and escrowed money, books that
match them, trades that become reservations, settlement as blocks are delivered, market data
and the price index. See docs/market.md.

- `exchange`: place, cancel and replace orders; `sweep`: expiry, due auctions, settlement and
  the index, on the background loop; `backing`: what a pool can still sell; `escrow`: the
  ledger side; `data`: books, the tape, bars, the index; `rfq`: requests for quote;
  `reservations`: what the scheduler asks; `checks`: the market's invariants with the ledger's.
"""

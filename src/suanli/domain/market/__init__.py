"""The compute exchange (算力交易): products, orders, the order book and its call auction, the
event log, escrow arithmetic, requests for quote and the price index. Pure: no I/O; time
comes in as arguments. See docs/market.md.
"""

"""Compare two points in time: snapshots and the live tenant (diff, history, restore plans)."""

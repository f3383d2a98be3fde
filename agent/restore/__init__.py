"""Restore: plan (plan.py), apply and verify (apply.py) a snapshot back into a tenant."""

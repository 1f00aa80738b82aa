"""Enrolments (the saga that reserves credit), claims, payouts and fraud holds."""

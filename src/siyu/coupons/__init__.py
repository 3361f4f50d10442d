"""Coupons: templates (what a coupon gives), and in later steps issue, redemption exactly
once, returns and liability (issue #17)."""

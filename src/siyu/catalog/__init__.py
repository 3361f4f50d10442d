"""Reference data: brand groups, brands, channels, stores, products, shopping guides."""

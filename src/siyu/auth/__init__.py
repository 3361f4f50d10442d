"""Who is calling: API keys, roles and the scopes that limit what each principal sees."""

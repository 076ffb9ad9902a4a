"""The worker's web server: HTTP views over tables/' state, health, metrics and the dashboard.

Modules here define Faust pages, added by each module's `register(app)` when the worker is
wired (nothing registers at import); the state they read lives one floor down, in tables/.
`guard` (token rule, JSON errors) and `params` serve every view; `cluster` and `shares` let
any worker answer for the whole deployment; `product_views` forwards a product's requests
to the worker that owns it.
"""

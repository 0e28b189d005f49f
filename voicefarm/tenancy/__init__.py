"""Who may ask for what: API keys (`auth`), a tenant's limits (`admission`) and the windows they
are counted in (`windows`: Redis, or this process), and where callbacks may go (`targets`).

May import: settings, errors, store.
"""

"""Who may ask for what: API keys (`auth`), a tenant's limits and the windows they are counted in
(`admission`), and where callbacks may go (`targets`).

May import: settings, errors, store.
"""

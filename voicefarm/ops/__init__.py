"""Keeping the farm whole: the reconciler that sends again what was lost (`reconcile`) and the
local supervisor that starts and stops a farm's processes (`supervisor`).

May import: everything below the API.
"""

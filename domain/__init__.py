"""The status-tracking core: statuses and their lifecycles, entities, events and ports.

Nothing here performs IO or imports anything beyond the standard library.
"""

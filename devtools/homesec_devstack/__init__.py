"""Dev/test-only tooling: the Event Hubs emulator, Azurite, process helpers and the local stack.

Never installed into a service image and never deployed by the chart.
"""

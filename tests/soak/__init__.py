"""``make soak``: the whole local stack as a small deployment under a day-like load and a schedule of
disruptions, verified from the outside (docs/operations.md#soak-test)."""

"""Pure folds over the event log: each module turns events into one queryable state.

``projections.fold`` combines them; ``projections.runner`` keeps them current
against the log. Nothing else in this package does I/O.
"""

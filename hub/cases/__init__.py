"""Cases with deadlines (issue 12): objections, complaints and reports, credit repair and the
review queue before publication, each with a deadline counted in working days. The working-day
calendar (calendar.py, one TOML file per year in calendars/ or `<data-dir>/calendars/`) comes
first; docs/cases.md walks through it.

Import from the modules (`xinlian.hub.cases.calendar`, ...): this package's `__init__` imports
nothing, so any part of the hub can use the calendar without a cycle."""

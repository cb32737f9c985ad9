"""Where changes go once they are stored: report files (reports.py), the static
report site (site.py) and its Atom feed (atom.py).

Each output reads stored changes and writes somewhere people look; none of
them decides anything about a change. Notification channels plug in here.
"""

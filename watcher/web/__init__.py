"""``watcher serve``: a live, read-only web UI and JSON API over the database.

app.py       the Starlette application: routes, the write token, security headers
queries.py   what a page or an API call lists: filters and cursor pagination
pages.py     HTML pages, rendered from records and parsed articles (pure)
jsonapi.py   records as JSON values (pure)
markup.py    escaping, links, times and the page shell: the one rule for archived
             text in HTML; the stylesheet and the one small script, served as files

Pages are rendered from the database on every request, never from archived
HTML; search uses :mod:`watcher.search`. Nothing a page shows makes the browser
request anything but this server (a CSP says so too).
"""

"""``raceway tui``: a terminal UI over a live server or a saved session (Textual).

Modules: :mod:`.source` (the data interface), :mod:`.server_source` / :mod:`.session_source`
(its two implementations), :mod:`.text` / :mod:`.render` (what every view shows, as pure
functions), :mod:`.views` / :mod:`.app` (the Textual widgets) and :mod:`.plain` (the plain-text
summary for dumb terminals and pipes). Importing this package imports neither Textual nor httpx.
"""

"""Reading the settings directory: input files with their last good versions, the ledger,
atomic writes, watching (inotify). Imports only `core`, `settings`, `errors`, `secret`.
"""

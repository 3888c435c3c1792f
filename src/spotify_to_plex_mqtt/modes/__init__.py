"""The other things the command does: one-shot, dry run and its report, the demo, purge."""

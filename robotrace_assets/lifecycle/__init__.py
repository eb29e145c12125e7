"""The partition lifecycle: closed segments and media sessions leave Dagster's dynamic
partitions (archive), their records and event-log history stay, and `robotrace segments reopen`
brings them back. policy.py holds the closure rule, archive.py the records and reopen(),
sweep.py one bounded archival pass, sensors.py the Dagster sensor, cli.py the commands."""

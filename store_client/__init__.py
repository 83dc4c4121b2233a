"""The store client daemon: broker link, durable spool, one worker per printer."""

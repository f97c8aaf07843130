-- Wait (bounded) until the worker has moved the audit queue into the table.
DO $$
DECLARE deadline timestamptz := clock_timestamp() + interval '30 s';
BEGIN
    WHILE (SELECT queued FROM imgmod.audit_queue()) > 0 AND clock_timestamp() < deadline LOOP
        PERFORM pg_sleep(0.01);
    END LOOP;
END $$;

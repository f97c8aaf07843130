-- Every imgmod setting keeps its description intact in every backend: the
-- texts live as long as the process (a text formatted while the library
-- loaded in the postmaster would be freed memory after fork: truncated
-- text or stray bytes here).
SELECT name, short_desc, extra_desc FROM pg_settings WHERE name LIKE 'imgmod.%' ORDER BY name;

-- All of it is valid UTF-8 (convert_to verifies the bytes).
SELECT octet_length(convert_to(string_agg(name || short_desc || coalesce(extra_desc, ''), '' ORDER BY name), 'UTF8')) > 0
       AS valid_utf8
  FROM pg_settings WHERE name LIKE 'imgmod.%';

-- Secrets, and the Redis URL that carries its password, are not in SHOW ALL
-- (pg_settings lists what SHOW ALL lists) even for a superuser.
SELECT name FROM pg_settings
 WHERE name IN ('imgmod.redis_url', 'imgmod.s3_secret_key', 'imgmod.hires_s3_secret_key',
                'imgmod.kafka_sasl_password');
SELECT count(*) AS hidden_present FROM pg_show_all_settings()
 WHERE name IN ('imgmod.redis_url', 'imgmod.s3_secret_key', 'imgmod.hires_s3_secret_key',
                'imgmod.kafka_sasl_password');

-- Superuser-only: another role cannot read them at all.
CREATE ROLE imgmod_settings_reader;
SET ROLE imgmod_settings_reader;
SHOW imgmod.redis_url;
SHOW imgmod.kafka_sasl_password;
SHOW imgmod.kafka_sasl_username;
SHOW imgmod.kafka_ssl_ca_location;
SHOW imgmod.s3_secret_key;
SHOW imgmod.kafka_security_protocol;
RESET ROLE;
DROP ROLE imgmod_settings_reader;

-- The security protocol is one librdkafka knows.
ALTER SYSTEM SET imgmod.kafka_security_protocol = 'tls-please';

-- imgmod.render_threads: 1 to 8, for the whole server (the workers read it
-- on reload), never per session.
SHOW imgmod.render_threads;
SET imgmod.render_threads = 1;
ALTER SYSTEM SET imgmod.render_threads = 0;
ALTER SYSTEM SET imgmod.render_threads = 9;
ALTER SYSTEM SET imgmod.render_threads = 'two';
SELECT context, min_val, max_val, boot_val FROM pg_settings WHERE name = 'imgmod.render_threads';

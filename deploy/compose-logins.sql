-- docker-compose.yml's logins, one per service, each in its service's roles
-- (docs/operations.md, Roles). Run by the `logins` service after migrate, as the
-- owner. Local stand-ins: the passwords are not secrets.
-- Re-runnable: a login that exists is left as it is.
DO $$
DECLARE
    login record;
BEGIN
    FOR login IN SELECT * FROM (VALUES
            ('media_listener', 'listener', 'publisher_listener, publisher_maintenance'),
            ('media_worker', 'worker', 'publisher_worker'),
            ('media_web', 'web', 'publisher_oncall')) AS l(name, password, roles)
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = login.name) THEN
            EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L IN ROLE %s', login.name, login.password, login.roles);
        END IF;
    END LOOP;
END $$;

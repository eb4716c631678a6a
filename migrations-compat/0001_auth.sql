-- Supabase's `auth` schema, for a database that is not Supabase: `auth.users` (whom rows
-- belong to) and `auth.uid()` (who is asking, from the JWT claims of the session).
-- Everything here is created only when absent, so on a real Supabase it changes nothing.

CREATE SCHEMA IF NOT EXISTS auth;

CREATE TABLE IF NOT EXISTS auth.users (
    id uuid PRIMARY KEY,
    email text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- As Supabase defines it: `request.jwt.claim.sub`, or `sub` from the JSON in
-- `request.jwt.claims`; NULL when neither is set (then no policy matches).
DO $$
BEGIN
    IF to_regprocedure('auth.uid()') IS NULL THEN
        CREATE FUNCTION auth.uid() RETURNS uuid
            LANGUAGE sql STABLE
            AS $f$
                SELECT coalesce(
                    nullif(current_setting('request.jwt.claim.sub', true), ''),
                    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
                )::uuid
            $f$;
    END IF;
END
$$;

-- Supabase's API roles: `authenticated` (a signed-in user, subject to RLS) and `anon`.
-- Roles are per cluster; made only when absent, never altered.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN NOINHERIT;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA auth TO authenticated, anon;
GRANT EXECUTE ON FUNCTION auth.uid() TO authenticated, anon;

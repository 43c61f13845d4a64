"""booking_slot_probe(): a slot request's credential and calendar state in one round trip

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 02:30:00

A cached slot answer may be sent only once the caller's credential is checked (not
revoked, not expired) and the location's calendar version is read from the database (no
stale window). Through the ORM that is a credential look-up, BEGIN, the tenant's
row-level-security switch, the slot context and COMMIT: most of a warm request's time.
This function does both reads in one statement, with the same two walls as a tenant unit
of work: the credential is looked up as the connecting role (as api.auth does before the
tenant is known), then the function switches to `chairfill_app` with `app.tenant_id` set
for the rest of its statement's transaction, so the tenant's rows are read behind
row-level security as well as behind the explicit tenant filter, and switches back before
it returns (called outside any transaction, as the API does, the switch would end with the
statement anyway).

No row: the credential is unknown, revoked or expired. A row with a null `timezone`: the
credential is good and the location is not the tenant's. See api/booking/fast_path.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from api.core.db import APP_ROLE

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURE = "booking_slot_probe(text, text, text, timestamptz, text[])"


def upgrade() -> None:
    op.execute(
        f"""
        CREATE FUNCTION booking_slot_probe(
            p_access_token_hash text,
            p_publishable_key text,
            p_location_id text,
            p_now timestamptz,
            p_calendar_entities text[]
        )
        RETURNS TABLE (
            tenant_id text,
            credential_id text,
            client_id text,
            user_id text,
            scopes text[],
            location_ids text[],
            allowed_origins text[],
            timezone text,
            stale_data_threshold_minutes integer,
            data_as_of timestamptz,
            calendar_batches bigint,
            calendar_version bigint,
            min_notice_minutes integer,
            horizon_days integer,
            step_minutes integer
        )
        LANGUAGE plpgsql
        AS $$
        #variable_conflict use_column
        DECLARE
            v_tenant text;
            v_credential text;
            v_client text;
            v_user text;
            v_scopes text[];
            v_locations text[];
            v_origins text[];
            v_role text := current_setting('role');
            v_wall text := current_setting('app.tenant_id', true);
        BEGIN
            IF p_access_token_hash IS NOT NULL THEN
                SELECT t.tenant_id, t.id, t.client_id, t.user_id, t.scopes, t.location_ids
                  INTO v_tenant, v_credential, v_client, v_user, v_scopes, v_locations
                  FROM oauth_tokens t
                 WHERE t.access_token_hash = p_access_token_hash
                   AND t.revoked_at IS NULL
                   AND t.expires_at > p_now;
            ELSE
                SELECT k.tenant_id, k.id, k.id, NULL, '{{}}'::text[], k.location_ids,
                       k.allowed_origins
                  INTO v_tenant, v_credential, v_client, v_user, v_scopes, v_locations,
                       v_origins
                  FROM publishable_keys k
                 WHERE k.key = p_publishable_key
                   AND k.is_active
                   AND k.revoked_at IS NULL;
            END IF;
            IF v_tenant IS NULL THEN
                RETURN;
            END IF;
            -- The tenant's wall for the rest of this statement's transaction.
            PERFORM set_config('role', '{APP_ROLE}', true),
                    set_config('app.tenant_id', v_tenant, true);
            RETURN QUERY
            SELECT v_tenant, v_credential, v_client, v_user, v_scopes, v_locations, v_origins,
                   l.timezone::text,
                   tn.stale_data_threshold_minutes,
                   s.data_as_of,
                   (SELECT coalesce(sum((s.entities -> e ->> 'batches')::bigint), 0)
                      FROM unnest(p_calendar_entities) AS e)::bigint,
                   bp.calendar_version,
                   bp.min_notice_minutes,
                   bp.horizon_days,
                   bp.step_minutes
              FROM (SELECT 1) AS one
              LEFT JOIN locations l ON l.tenant_id = v_tenant AND l.id = p_location_id
              LEFT JOIN tenants tn ON tn.id = l.tenant_id
              LEFT JOIN location_sync_states s
                     ON s.tenant_id = l.tenant_id AND s.location_id = l.id
              LEFT JOIN booking_policies bp
                     ON bp.tenant_id = l.tenant_id AND bp.location_id = l.id;
            -- Back to the caller's role and tenant: called inside a transaction, the
            -- switch must not outlive this call.
            PERFORM set_config('role', v_role, true),
                    set_config('app.tenant_id', coalesce(v_wall, ''), true);
        END
        $$
        """
    )
    # Only the connecting role (the API's credential look-ups) calls it.
    op.execute(f"REVOKE EXECUTE ON FUNCTION {SIGNATURE} FROM PUBLIC")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")

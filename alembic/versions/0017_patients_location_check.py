"""patients: the location key checked once per statement instead of once per row

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 05:30:00

The foreign key (tenant_id, location_id) -> locations ran its check for every inserted
patient: a cached query, started and finished per row with a row lock on the location,
about a sixth of the database's time in a first sync (perf, bench/RESULTS.md 2026-12-07).
A sync statement writes thousands of patients of one location, so the same guarantee is
kept with triggers that do the work once per statement:

* after INSERT (statement level, over the inserted rows): each distinct (tenant, location)
  must be a location, locked FOR KEY SHARE as the foreign key locks it, so it cannot be
  deleted before the insert commits; otherwise SQLSTATE 23503 (foreign_key_violation), as
  before, naming the old constraint;
* before UPDATE OF tenant_id, location_id (row level, only when they change): the same;
* after DELETE on locations: the location's patients go with it (the old ON DELETE
  CASCADE), when the transaction commits (see the trigger's comment); after UPDATE OF
  tenant_id, id on locations: refused while patients name it; TRUNCATE of locations alone
  is refused while there are patients.

The functions run as the caller, with a fixed search path (temporary tables last). A
tenant's transaction sees its own locations and patients behind row-level security, which
is all a patient of that tenant can name and all a location of it can hold; the tables'
owner (migrations, the demo loader) is not subject to row-level security.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTRAINT = "fk_patients_tenant_id_location_id_locations"


def upgrade() -> None:
    op.drop_constraint(CONSTRAINT, "patients", type_="foreignkey")
    # The tables' schema, then pg_temp named last: a temporary table called `locations`
    # cannot stand in for the real one inside the checks.
    schema = op.get_bind().exec_driver_sql("SELECT quote_ident(current_schema())").scalar()
    path = f"pg_catalog, {schema}, pg_temp"
    op.execute(
        f"""
        -- The location a patient names must be there; locked as a foreign key locks it,
        -- so it cannot be deleted before the patient's transaction commits.
        CREATE FUNCTION patients_location_held(tenant text, location text) RETURNS void
        LANGUAGE plpgsql SET search_path = {path} AS $$
        BEGIN
            PERFORM 1 FROM locations l WHERE l.tenant_id = tenant AND l.id = location
            FOR KEY SHARE OF l;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'insert or update on table "patients" violates foreign key constraint "{CONSTRAINT}"'
                    USING ERRCODE = 'foreign_key_violation', CONSTRAINT = '{CONSTRAINT}',
                          TABLE = 'patients',
                          DETAIL = format('Key (tenant_id, location_id)=(%s, %s) is not present in table "locations".',
                                          tenant, location);
            END IF;
        END
        $$;

        CREATE FUNCTION patients_location_inserted() RETURNS trigger
        LANGUAGE plpgsql SET search_path = {path} AS $$
        DECLARE
            key record;
        BEGIN
            -- Once per location the statement wrote to (a sync statement: one).
            FOR key IN SELECT DISTINCT tenant_id, location_id FROM new_rows LOOP
                PERFORM patients_location_held(key.tenant_id, key.location_id);
            END LOOP;
            RETURN NULL;
        END
        $$;

        CREATE FUNCTION patients_location_moved() RETURNS trigger
        LANGUAGE plpgsql SET search_path = {path} AS $$
        BEGIN
            PERFORM patients_location_held(NEW.tenant_id, NEW.location_id);
            RETURN NEW;
        END
        $$;

        CREATE FUNCTION locations_patients_cascade() RETURNS trigger
        LANGUAGE plpgsql SET search_path = {path} AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                DELETE FROM patients p WHERE p.tenant_id = OLD.tenant_id AND p.location_id = OLD.id;
                RETURN OLD;
            END IF;
            IF EXISTS (SELECT 1 FROM patients p
                       WHERE p.tenant_id = OLD.tenant_id AND p.location_id = OLD.id) THEN
                RAISE EXCEPTION 'update on table "locations" violates foreign key constraint "{CONSTRAINT}" on table "patients"'
                    USING ERRCODE = 'foreign_key_violation', CONSTRAINT = '{CONSTRAINT}',
                          TABLE = 'patients';
            END IF;
            RETURN NEW;
        END
        $$;

        CREATE FUNCTION locations_truncated() RETURNS trigger
        LANGUAGE plpgsql SET search_path = {path} AS $$
        BEGIN
            -- As a foreign key refuses it: truncate patients with it (or first).
            IF EXISTS (SELECT 1 FROM patients) THEN
                RAISE EXCEPTION 'cannot truncate a table referenced in a foreign key constraint'
                    USING ERRCODE = 'feature_not_supported',
                          DETAIL = 'Table "patients" references "locations".',
                          HINT = 'Truncate table "patients" at the same time.';
            END IF;
            RETURN NULL;
        END
        $$;

        CREATE TRIGGER patients_location_inserted AFTER INSERT ON patients
            REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION patients_location_inserted();
        CREATE TRIGGER patients_location_moved BEFORE UPDATE OF tenant_id, location_id ON patients
            FOR EACH ROW
            WHEN (OLD.tenant_id IS DISTINCT FROM NEW.tenant_id
                  OR OLD.location_id IS DISTINCT FROM NEW.location_id)
            EXECUTE FUNCTION patients_location_moved();
        -- At commit, like a foreign key's cascade (whose own checks wait for the end of
        -- the outer statement): deleting a tenant also deletes, through other cascades,
        -- the rows that name its patients (campaign recipients, ...), which must be gone
        -- before the patients' deletion is checked against them.
        CREATE CONSTRAINT TRIGGER locations_patients_deleted AFTER DELETE ON locations
            DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW EXECUTE FUNCTION locations_patients_cascade();
        CREATE TRIGGER locations_patients_truncated AFTER TRUNCATE ON locations
            FOR EACH STATEMENT EXECUTE FUNCTION locations_truncated();
        CREATE TRIGGER locations_patients_rekeyed AFTER UPDATE OF tenant_id, id ON locations
            FOR EACH ROW
            WHEN (OLD.tenant_id IS DISTINCT FROM NEW.tenant_id OR OLD.id IS DISTINCT FROM NEW.id)
            EXECUTE FUNCTION locations_patients_cascade();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER locations_patients_truncated ON locations;
        DROP TRIGGER locations_patients_rekeyed ON locations;
        DROP TRIGGER locations_patients_deleted ON locations;
        DROP TRIGGER patients_location_moved ON patients;
        DROP TRIGGER patients_location_inserted ON patients;
        DROP FUNCTION locations_truncated();
        DROP FUNCTION locations_patients_cascade();
        DROP FUNCTION patients_location_moved();
        DROP FUNCTION patients_location_inserted();
        DROP FUNCTION patients_location_held(text, text);
        """
    )
    op.create_foreign_key(
        CONSTRAINT,
        "patients",
        "locations",
        ["tenant_id", "location_id"],
        ["tenant_id", "id"],
        ondelete="CASCADE",
    )

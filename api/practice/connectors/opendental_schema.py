"""The Open Dental tables (MySQL/MariaDB) the connector reads: their real names, and the
columns it uses with Open Dental's types. Tests build a database from this; the
connector's SQL names the same columns.

Enums as Open Dental stores them:
  patient.PatStatus           0 Patient, 1 NonPatient, 2 Inactive, 3 Archived, 4 Deleted, 5 Deceased
  patient.PreferContactMethod 0 None, 1 DoNotCall, 2 HmPhone, 3 WkPhone, 4 WirelessPh, 5 Email,
                              6 SeeNotes, 7 Mail, 8 TextMessage
  patient.TxtMsgOk            0 Unknown, 1 Yes, 2 No
  appointment.AptStatus       1 Scheduled, 2 Complete, 3 UnschedList, 5 Broken, 6 Planned,
                              7 PtNote, 8 PtNoteCompleted
  procedurelog.ProcStatus     1 TP, 2 C, 3 EC, 4 EO, 5 R, 6 D, 7 Cn, 8 TPi
  treatplan.TPStatus          0 Saved, 1 Active, 2 Inactive
  schedule.SchedType          0 Practice, 1 Provider, 2 Blockout, 3 Employee
  deletedobject.ObjectType    0 Appointment, 1 ScheduleProv, 2 RecallPatNum
  recall.RecallInterval       packed: days | weeks << 8 | months << 16 | years << 24
  definition.Category         4 BillingTypes (ItemValue 'C': the collections billing type),
                              27 CommLogTypes (ItemValue: usage APPT, FIN, RECALL, MISC,
                              TEXT, REACT, or blank)
  commlog.Mode_               0 None, 1 Email, 2 Mail, 3 Phone, 4 InPerson, 5 Text,
                              6 EmailAndText
  commlog.SentOrReceived      0 Neither, 1 Sent, 2 Received
  commlog.CommSource          0 User, 1 WebSched, 2 ProgramLink, 3 ApptReminder, 4 EServices,
                              5 SupplementalBackup, 6 ApptThankYou, 7 FHIR (and the API)
  commoptout.OptOutSms/Email  flags: 1 All, 2 eConfirm, 4 eReminder, 8 eThankYou,
                              16 WebSchedRecall, 32 WebSchedASAP, 64 PatientPortalInvites,
                              128 Verify, 256 Statements, 512 Arrivals, 1024 Birthdays

Sources for the ledger, commlog and opt-out columns (checked, not guessed): Open Dental's
own table classes in github.com/OpenDental/opendental (OpenDentBusiness/TableTypes
Patient.cs, Commlog.cs, CommOptOut.cs, Def.cs, the 24.x line), its A/R Manager (a billing
type whose ItemValue is "C", case-insensitive, is the collections type), the manual's
"Definitions: Commlog Types" page (v23.2), and the CREATE TABLE statements of a MariaDB
10.11 Open Dental database dumped in 2025 (column names and types). The aging columns are
"only stored with the guarantor" and are for the whole family.
"""

from __future__ import annotations

STAMP = "timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP"

TABLES: dict[str, str] = {
    "provider": f"""
        ProvNum bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, Abbr varchar(255) NOT NULL DEFAULT '',
        FName varchar(100) NOT NULL DEFAULT '', LName varchar(100) NOT NULL DEFAULT '',
        IsSecondary tinyint NOT NULL DEFAULT 0, IsHidden tinyint NOT NULL DEFAULT 0,
        DateTStamp {STAMP}""",
    "operatory": """
        OperatoryNum bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
        OpName varchar(255) NOT NULL DEFAULT '', IsHidden tinyint NOT NULL DEFAULT 0""",
    "appointmenttype": """
        AppointmentTypeNum bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
        AppointmentTypeName varchar(255) NOT NULL DEFAULT '',
        Pattern varchar(255) NOT NULL DEFAULT '',
        IsHidden tinyint NOT NULL DEFAULT 0""",
    "patient": f"""
        PatNum bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, LName varchar(100) NOT NULL DEFAULT '',
        FName varchar(100) NOT NULL DEFAULT '', Preferred varchar(100) NOT NULL DEFAULT '',
        Birthdate date NOT NULL DEFAULT '0001-01-01', PatStatus tinyint NOT NULL DEFAULT 0,
        Email varchar(100) NOT NULL DEFAULT '', WirelessPhone varchar(30) NOT NULL DEFAULT '',
        HmPhone varchar(30) NOT NULL DEFAULT '', PreferContactMethod tinyint NOT NULL DEFAULT 0,
        TxtMsgOk tinyint NOT NULL DEFAULT 0, Guarantor bigint NOT NULL DEFAULT 0,
        PriProv bigint NOT NULL DEFAULT 0, DateFirstVisit date NOT NULL DEFAULT '0001-01-01',
        BillingType bigint NOT NULL DEFAULT 0, Bal_0_30 double NOT NULL DEFAULT 0,
        Bal_31_60 double NOT NULL DEFAULT 0, Bal_61_90 double NOT NULL DEFAULT 0,
        BalOver90 double NOT NULL DEFAULT 0, InsEst double NOT NULL DEFAULT 0,
        BalTotal double NOT NULL DEFAULT 0,
        DateTStamp {STAMP}, KEY IndexGuarantor (Guarantor), KEY DateTStamp (DateTStamp)""",
    "appointment": f"""
        AptNum bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, PatNum bigint NOT NULL DEFAULT 0,
        AptStatus tinyint NOT NULL DEFAULT 0, Pattern varchar(255) NOT NULL DEFAULT '',
        Confirmed bigint NOT NULL DEFAULT 0, Op bigint NOT NULL DEFAULT 0,
        ProvNum bigint NOT NULL DEFAULT 0, ProvHyg bigint NOT NULL DEFAULT 0,
        AptDateTime datetime NOT NULL DEFAULT '0001-01-01 00:00:00',
        IsHygiene tinyint NOT NULL DEFAULT 0, AppointmentTypeNum bigint NOT NULL DEFAULT 0,
        DateTStamp {STAMP}, KEY PatNum (PatNum), KEY DateTStamp (DateTStamp)""",
    "recalltype": """
        RecallTypeNum bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
        Description varchar(255) NOT NULL DEFAULT ''""",
    "recall": f"""
        RecallNum bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, PatNum bigint NOT NULL DEFAULT 0,
        DateDue date NOT NULL DEFAULT '0001-01-01', RecallInterval int NOT NULL DEFAULT 0,
        IsDisabled tinyint NOT NULL DEFAULT 0, RecallTypeNum bigint NOT NULL DEFAULT 0,
        DateTStamp {STAMP}, KEY PatNum (PatNum)""",
    "procedurecode": """
        CodeNum bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
        ProcCode varchar(15) NOT NULL DEFAULT '',
        Descript varchar(255) NOT NULL DEFAULT ''""",
    "treatplan": """
        TreatPlanNum bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, PatNum bigint NOT NULL DEFAULT 0,
        DateTP date NOT NULL DEFAULT '0001-01-01', Heading varchar(255) NOT NULL DEFAULT '',
        TPStatus tinyint NOT NULL DEFAULT 0,
        SecDateTEdit timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP""",
    "treatplanattach": """
        TreatPlanAttachNum bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
        TreatPlanNum bigint NOT NULL DEFAULT 0, ProcNum bigint NOT NULL DEFAULT 0,
        KEY ProcNum (ProcNum)""",
    "procedurelog": f"""
        ProcNum bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, PatNum bigint NOT NULL DEFAULT 0,
        AptNum bigint NOT NULL DEFAULT 0, ProcDate date NOT NULL DEFAULT '0001-01-01',
        ProcFee double NOT NULL DEFAULT 0, Surf varchar(10) NOT NULL DEFAULT '',
        ToothNum varchar(2) NOT NULL DEFAULT '', ProcStatus tinyint NOT NULL DEFAULT 0,
        ProvNum bigint NOT NULL DEFAULT 0, CodeNum bigint NOT NULL DEFAULT 0,
        DateTP date NOT NULL DEFAULT '0001-01-01', DateTStamp {STAMP},
        KEY PatNum (PatNum), KEY DateTStamp (DateTStamp)""",
    "schedule": f"""
        ScheduleNum bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
        SchedDate date NOT NULL DEFAULT '0001-01-01', StartTime time NOT NULL DEFAULT '00:00:00',
        StopTime time NOT NULL DEFAULT '00:00:00', SchedType tinyint NOT NULL DEFAULT 0,
        ProvNum bigint NOT NULL DEFAULT 0, BlockoutType bigint NOT NULL DEFAULT 0,
        DateTStamp {STAMP}""",
    "scheduleop": """
        ScheduleOpNum bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
        ScheduleNum bigint NOT NULL DEFAULT 0, OperatoryNum bigint NOT NULL DEFAULT 0,
        KEY ScheduleNum (ScheduleNum)""",
    "definition": """
        DefNum bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, Category tinyint NOT NULL DEFAULT 0,
        ItemOrder int NOT NULL DEFAULT 0, ItemName varchar(255) NOT NULL DEFAULT '',
        ItemValue varchar(255) NOT NULL DEFAULT '', ItemColor int NOT NULL DEFAULT 0,
        IsHidden tinyint NOT NULL DEFAULT 0""",
    "commlog": f"""
        CommlogNum bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, PatNum bigint NOT NULL DEFAULT 0,
        CommDateTime datetime NOT NULL DEFAULT '0001-01-01 00:00:00',
        CommType bigint NOT NULL DEFAULT 0, Note text, Mode_ tinyint unsigned NOT NULL DEFAULT 0,
        SentOrReceived tinyint unsigned NOT NULL DEFAULT 0, UserNum bigint NOT NULL DEFAULT 0,
        DateTStamp {STAMP}, CommSource tinyint DEFAULT NULL,
        ProgramNum bigint NOT NULL DEFAULT 0,
        DateTEntry datetime NOT NULL DEFAULT '0001-01-01 00:00:00',
        KEY PatNum (PatNum), KEY CommDateTime (CommDateTime)""",
    "commoptout": """
        CommOptOutNum bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
        PatNum bigint NOT NULL DEFAULT 0, OptOutSms int NOT NULL DEFAULT 0,
        OptOutEmail int NOT NULL DEFAULT 0, KEY PatNum (PatNum)""",
    "deletedobject": f"""
        DeletedObjectNum bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
        ObjectNum bigint NOT NULL DEFAULT 0, ObjectType int NOT NULL DEFAULT 0,
        DateTStamp {STAMP}""",
}


def create_statements() -> list[str]:
    return [
        f"CREATE TABLE {name} ({columns}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        for name, columns in TABLES.items()
    ]

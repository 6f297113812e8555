"""whatsnap/rows.py: the webhook ack's compiled-once read and conflict-free insert behave as
the ORM does (same instance, same conversions, same defaults) and a duplicate is a no-op."""
import pytest
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Account
from conversations.models import InboundEvent
from whatsnap.rows import ConflictFreeInsert, RowLoader

LOADER = RowLoader(Account, "id = %s AND archived_at IS NULL")
INSERT = ConflictFreeInsert(InboundEvent, ("account", "dedupe_key"))


@pytest.mark.django_db
def test_loader_builds_the_instance_the_orm_builds(twilio_account):
    twilio_account.config = {"messaging_service_sid": "MG" + "2" * 32, "nested": {"a": [1, 2]}}
    twilio_account.last_webhook_at = timezone.now()
    twilio_account.save()
    expected = Account.objects.get(pk=twilio_account.pk)

    loaded = LOADER.first([twilio_account.pk])

    assert loaded is not None and loaded.pk == expected.pk
    for field in Account._meta.concrete_fields:
        assert getattr(loaded, field.attname) == getattr(expected, field.attname), field.name
    # encrypted fields come back decrypted, datetimes aware, JSON parsed: the converters ran
    assert loaded.credentials["auth_token"] == "secret-auth-token"
    assert loaded.webhook_secret == expected.webhook_secret and loaded.webhook_secret
    assert timezone.is_aware(loaded.created_at)
    assert loaded.config["nested"] == {"a": [1, 2]}
    assert loaded._state.adding is False and loaded._state.db == "default"
    loaded.name = "renamed"  # a loaded instance saves like any other
    loaded.save(update_fields=["name"])
    assert Account.objects.get(pk=twilio_account.pk).name == "renamed"


@pytest.mark.django_db
def test_loader_reads_fresh_and_skips_archived_and_missing(twilio_account):
    assert LOADER.first([twilio_account.pk + 1000]) is None
    Account.objects.filter(pk=twilio_account.pk).update(credentials={"auth_token": "rotated"})
    assert LOADER.first([twilio_account.pk]).credentials["auth_token"] == "rotated"  # no stale copy
    Account.objects.filter(pk=twilio_account.pk).update(archived_at=timezone.now())
    assert LOADER.first([twilio_account.pk]) is None


@pytest.mark.django_db
def test_insert_applies_defaults_and_a_duplicate_is_a_no_op(twilio_account):
    values = {"account_id": twilio_account.pk, "kind": "message", "dedupe_key": "msg:SM1", "payload": {"text": "hi", "n": [1]}}
    pk = INSERT.insert(values)
    row = InboundEvent.objects.get(pk=pk)
    assert (row.status, row.attempts, row.error, row.payload) == ("pending", 0, "", {"text": "hi", "n": [1]})
    assert row.received_at is not None and timezone.is_aware(row.received_at)

    assert INSERT.insert({**values, "payload": {"text": "other"}}) is None
    assert InboundEvent.objects.get(pk=pk).payload == {"text": "hi", "n": [1]}  # the first one stands
    # the same key on another account is not a conflict
    other = Account.objects.create(location=twilio_account.location, name="other", kind=twilio_account.kind,
                                   backend=twilio_account.backend)
    assert INSERT.insert({**values, "account_id": other.pk}) not in (None, pk)


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_inside_a_transaction_leaves_it_usable(twilio_account):
    values = {"account_id": twilio_account.pk, "kind": "message", "dedupe_key": "msg:SM2", "payload": {}}
    INSERT.insert(values)
    with transaction.atomic():
        assert INSERT.insert(values) is None
        # an IntegrityError would have aborted a PostgreSQL transaction: this query would fail
        assert InboundEvent.objects.filter(account=twilio_account).count() == 1
        INSERT.insert({**values, "dedupe_key": "msg:SM3"})
    assert InboundEvent.objects.filter(account=twilio_account).count() == 2
    assert not connection.in_atomic_block


@pytest.mark.django_db
def test_insert_refuses_a_column_the_model_lacks(twilio_account):
    with pytest.raises(TypeError, match="no column"):
        INSERT.insert({"account_id": twilio_account.pk, "kind": "message", "dedupe_key": "k", "payload": {}, "nope": 1})
    assert not InboundEvent.objects.exists()

# Issue 18: GHL sends reach any contact — the accounts a send from GHL goes through when the
# contact has no account tag (per GHL user, then per location and channel), and the outbox
# operation that reads the GHL contact and chooses the account outside the webhook request.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0011_location_country'),
        ('ghl', '0006_merged_contacts_and_message_notes'),
    ]

    operations = [
        migrations.AddField(
            model_name='ghlconnection',
            name='default_sms_account',
            field=models.ForeignKey(blank=True, help_text='GHL sends through the SMS provider without an account tag', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='accounts.account'),
        ),
        migrations.AddField(
            model_name='ghlconnection',
            name='default_whatsapp_account',
            field=models.ForeignKey(blank=True, help_text='GHL sends through the WhatsApp provider without an account tag', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='accounts.account'),
        ),
        migrations.AddField(
            model_name='ghluser',
            name='sends_through',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='accounts.account'),
        ),
        migrations.AlterField(
            model_name='outboxitem',
            name='operation',
            field=models.CharField(choices=[('contact_upsert', 'Contact upsert (name, tags, assignee)'), ('inbound_message', 'Inbound message'), ('outbound_message', 'Outbound message log'), ('message_status', 'Message status'), ('message_note', 'Reactions / edit / deletion note'), ('contact_retire', 'Merged-away GHL contact marked'), ('provider_outbound', 'Send from GHL (contact read, account chosen)')], max_length=30),
        ),
    ]

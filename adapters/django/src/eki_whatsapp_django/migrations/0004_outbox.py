# The outbox (docs/store.md): sends that wait for a provider, or for the status of an ambiguous send.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("eki_whatsapp_django", "0003_durable_handling"),
    ]

    operations = [
        migrations.CreateModel(
            name="WhatsAppOutbox",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("state", models.CharField(max_length=16)),
                ("recipient", models.CharField(max_length=128)),
                ("message", models.JSONField()),
                ("options", models.JSONField(blank=True, default=dict)),
                ("correlation", models.CharField(blank=True, max_length=128, null=True)),
                ("provider", models.CharField(blank=True, max_length=16, null=True)),
                ("attempts", models.PositiveIntegerField(default=0)),
                ("next_attempt_at", models.DateTimeField(blank=True, null=True)),
                ("expires_at", models.DateTimeField()),
                ("lease_owner", models.CharField(blank=True, max_length=128, null=True)),
                ("lease_until", models.DateTimeField(blank=True, null=True)),
                ("last_error", models.TextField(blank=True, null=True)),
                ("log_id", models.BigIntegerField(blank=True, null=True)),
                ("created_at", models.DateTimeField()),
                ("updated_at", models.DateTimeField()),
            ],
            options={
                "verbose_name": "WhatsApp outbox send",
                "verbose_name_plural": "WhatsApp outbox",
                "indexes": [
                    models.Index(fields=["state"], name="eki_whatsapp_outbox_state"),
                    models.Index(fields=["correlation"], name="eki_whatsapp_outbox_corr"),
                ],
            },
        ),
    ]

# Durable handling (docs/store.md): the log and status rows carry their handling state.

from django.db import migrations, models


def _work_fields(model_name: str) -> list[migrations.AddField]:
    return [
        migrations.AddField(
            model_name=model_name,
            name="handling",
            field=models.CharField(blank=True, max_length=16, null=True),
        ),
        migrations.AddField(
            model_name=model_name,
            name="lease_owner",
            field=models.CharField(blank=True, max_length=128, null=True),
        ),
        migrations.AddField(
            model_name=model_name,
            name="lease_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name=model_name,
            name="next_attempt_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name=model_name,
            name="last_error",
            field=models.TextField(blank=True, null=True),
        ),
    ]


class Migration(migrations.Migration):
    dependencies = [
        ("eki_whatsapp_django", "0002_conversation"),
    ]

    operations = [
        *_work_fields("whatsapplog"),
        *_work_fields("whatsappstatus"),
        migrations.AddField(
            model_name="whatsappstatus",
            name="attempts",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddIndex(
            model_name="whatsapplog",
            index=models.Index(fields=["handling"], name="eki_whatsapp_log_handling"),
        ),
        migrations.AddIndex(
            model_name="whatsappstatus",
            index=models.Index(fields=["handling"], name="eki_whatsapp_status_handling"),
        ),
    ]

"""One plain unique constraint on (provider, external id, owner key) instead of two conditional ones.

MariaDB and MySQL have no partial indexes: Django left the conditional constraints out there
(models.W036), and nothing stopped a duplicate account. ``owner_key`` is ``"user:<pk>"`` or
``"site"``, never NULL, so one ordinary unique index covers user and site-level accounts on
every database. Existing rows get their key here, before the index is built.
"""

from django.db import migrations, models


import django_bigoauth.models


def fill_owner_keys(apps, schema_editor):
    LinkedAccount = apps.get_model("django_bigoauth", "LinkedAccount")
    accounts = LinkedAccount.objects.using(schema_editor.connection.alias)
    accounts.filter(user__isnull=True).update(owner_key="site")
    for pk, user_id in accounts.filter(user__isnull=False).values_list("pk", "user_id").iterator():
        accounts.filter(pk=pk).update(owner_key=f"user:{user_id}")


class Migration(migrations.Migration):
    dependencies = [("django_bigoauth", "0004_pendingauthorisation")]

    operations = [
        migrations.AddField(
            model_name="linkedaccount",
            name="owner_key",
            field=django_bigoauth.models.OwnerKeyField(
                default="site", editable=False, max_length=300, verbose_name="owner key"
            ),
            preserve_default=False,
        ),
        migrations.RunPython(fill_owner_keys, migrations.RunPython.noop, elidable=False),
        migrations.RemoveConstraint(model_name="linkedaccount", name="bigoauth_unique_user_account"),
        migrations.RemoveConstraint(model_name="linkedaccount", name="bigoauth_unique_site_account"),
        migrations.AddConstraint(
            model_name="linkedaccount",
            constraint=models.UniqueConstraint(
                fields=("provider", "external_id", "owner_key"), name="bigoauth_unique_account"
            ),
        ),
    ]


import functools

import factory
from django.contrib.auth.hashers import make_password

from accounts.models import Group, Membership, Role, Rule, User

PASSWORD = "correct horse battery staple"


@functools.cache
def password_hash() -> str:
    """Hash once per run: Argon2id is deliberately slow."""
    return make_password(PASSWORD)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@shop.example")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    status = User.Status.ACTIVE
    password = factory.LazyFunction(password_hash)

    @factory.post_generation
    def groups(self, create, extracted, **kwargs):
        for group in extracted or ():
            if isinstance(group, str):
                group = Group.objects.get(name=group)
            Membership.objects.create(user=self, group=group)


class RoleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Role

    name = factory.Sequence(lambda n: f"role-{n}")


class RuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rule

    role = factory.SubFactory(RoleFactory)
    effect = Rule.Effect.ALLOW
    pattern = "backoffice:users:view"


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Group
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"group-{n}")

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        for role in extracted or ():
            self.roles.add(role)

from django.conf import settings
from django.db import models
from django.utils import timezone


class Team(models.Model):
    class Strategy(models.TextChoices):
        ROUND_ROBIN = "round_robin", "Round robin"
        LEAST_OPEN = "least_open", "Fewest open conversations"

    location = models.ForeignKey("accounts.Location", on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=80)
    strategy = models.CharField(max_length=20, choices=Strategy.choices, default=Strategy.ROUND_ROBIN)
    sticky = models.BooleanField(default=True, help_text="a returning contact goes back to its previous owner when available")
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="teams", blank=True)
    # round robin: the member who got the last conversation
    last_assigned = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["location", "name"], name="uniq_team_name")]

    def __str__(self):
        return self.name


class RoutingRule(models.Model):
    """Evaluated in `position` order; the first rule whose conditions all hold decides."""

    class TagMode(models.TextChoices):
        ANY = "any", "any of the tags"
        ALL = "all", "all of the tags"

    class Hours(models.TextChoices):
        ALWAYS = "always", "at any time"
        WITHIN = "within", "within the account's business hours"
        OUTSIDE = "outside", "outside the account's business hours"

    class Target(models.TextChoices):
        USER = "user", "a team member"
        TEAM = "team", "a team"
        UNASSIGNED = "unassigned", "leave unassigned"

    location = models.ForeignKey("accounts.Location", on_delete=models.CASCADE, related_name="routing_rules")
    name = models.CharField(max_length=80)
    position = models.PositiveIntegerField(default=100)
    enabled = models.BooleanField(default=True)
    tags = models.ManyToManyField("contacts.Tag", blank=True, related_name="+")
    tag_mode = models.CharField(max_length=3, choices=TagMode.choices, default=TagMode.ANY)
    account = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    platform = models.CharField(max_length=20, blank=True, help_text="account kind, blank = any")
    hours = models.CharField(max_length=10, choices=Hours.choices, default=Hours.ALWAYS)
    target = models.CharField(max_length=10, choices=Target.choices, default=Target.TEAM)
    target_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    target_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+")

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return self.name

    def clean(self):
        from django.core.exceptions import ValidationError

        if self.target == self.Target.USER and not self.target_user_id:
            raise ValidationError({"target_user": "Pick the team member this rule assigns to."})
        if self.target == self.Target.TEAM and not self.target_team_id:
            raise ValidationError({"target_team": "Pick the team this rule assigns to."})


class WaitingConversation(models.Model):
    """A conversation routed to a team whose members were all at capacity, away or offline. It
    waits, oldest first per team, until one of them has room (routing.queue): then it is
    assigned under the same row locks routing uses. Assigned by hand, resolved or deleted, it
    leaves the queue."""

    location = models.ForeignKey("accounts.Location", on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="waiting")
    conversation = models.OneToOneField("conversations.Conversation", on_delete=models.CASCADE, related_name="waiting")
    since = models.DateTimeField(default=timezone.now, help_text="when it started waiting (kept when it waits again)")

    class Meta:
        ordering = ["since", "id"]
        indexes = [models.Index(fields=["team", "since", "id"], name="waiting_fifo")]

    def __str__(self):
        return f"conversation {self.conversation_id} waits for {self.team}"

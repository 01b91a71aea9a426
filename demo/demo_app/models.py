"""The demo service's own data, written in the same transaction as its events."""

from django.db import models


class Enrollment(models.Model):
    username = models.CharField(max_length=100)
    course_key = models.CharField(max_length=255)
    created = models.DateTimeField(auto_now_add=True)

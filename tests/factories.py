"""
Real openedx-events payloads of several shapes, built with factory-boy.

Shapes covered: nested attrs classes (enrollment -> user -> pii), optional fields left as
None and filled in, datetimes, CourseKey and UsageKey values, and lists of ints.
"""

from datetime import UTC, datetime

import factory
from opaque_keys.edx.keys import CourseKey, UsageKey
from openedx_events.content_authoring.data import XBlockData
from openedx_events.content_authoring.signals import XBLOCK_PUBLISHED
from openedx_events.learning.data import (
    CourseData,
    CourseEnrollmentData,
    UserData,
    UserPersonalData,
    XBlockSkillVerificationData,
)
from openedx_events.learning.signals import COURSE_ENROLLMENT_CREATED, SESSION_LOGIN_COMPLETED, XBLOCK_SKILL_VERIFIED


class UserPersonalDataFactory(factory.Factory):
    class Meta:
        model = UserPersonalData

    username = factory.Sequence(lambda n: f"learner{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    name = factory.Sequence(lambda n: f"Learner Number {n}")


class UserDataFactory(factory.Factory):
    class Meta:
        model = UserData

    id = factory.Sequence(int)
    is_active = True
    pii = factory.SubFactory(UserPersonalDataFactory)


class CourseDataFactory(factory.Factory):
    class Meta:
        model = CourseData

    course_key = factory.Sequence(lambda n: CourseKey.from_string(f"course-v1:edX+DemoX+Run{n % 5}"))
    display_name = "Demonstration Course"
    start = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    end = None  # optional field, left unset


class CourseEnrollmentDataFactory(factory.Factory):
    class Meta:
        model = CourseEnrollmentData

    user = factory.SubFactory(UserDataFactory)
    course = factory.SubFactory(CourseDataFactory)
    mode = "audit"
    is_active = True
    creation_date = factory.LazyFunction(lambda: datetime.now(UTC))
    created_by = None


class XBlockDataFactory(factory.Factory):
    class Meta:
        model = XBlockData

    usage_key = factory.Sequence(lambda n: UsageKey.from_string(f"block-v1:edX+DemoX+Run1+type@problem+block@p{n % 7}"))
    block_type = "problem"
    version = None


class SkillVerificationFactory(factory.Factory):
    class Meta:
        model = XBlockSkillVerificationData

    usage_key = factory.Sequence(lambda n: UsageKey.from_string(f"block-v1:edX+DemoX+Run1+type@html+block@h{n % 3}"))
    verified_skills = factory.LazyFunction(lambda: [1, 2, 3])
    ignored_skills = factory.LazyFunction(list)


def enrollment_event(**overrides):
    return (
        COURSE_ENROLLMENT_CREATED,
        "enrollment.course.course_key",
        {"enrollment": CourseEnrollmentDataFactory(**overrides)},
    )


def sample_events():
    """``(signal, event_key_field, event_data)`` for each shape under test."""
    return [
        enrollment_event(),
        enrollment_event(
            created_by=UserDataFactory(),
            course=CourseDataFactory(end=datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ),
        (SESSION_LOGIN_COMPLETED, "user.pii.username", {"user": UserDataFactory()}),
        (XBLOCK_PUBLISHED, "xblock_info.usage_key", {"xblock_info": XBlockDataFactory()}),
        (
            XBLOCK_PUBLISHED,
            "xblock_info.usage_key",
            {
                "xblock_info": XBlockDataFactory(
                    version=UsageKey.from_string("block-v1:edX+DemoX+Run1+type@problem+block@v2")
                )
            },
        ),
        (XBLOCK_SKILL_VERIFIED, "xblock_info.usage_key", {"xblock_info": SkillVerificationFactory()}),
    ]

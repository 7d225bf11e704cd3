from django import forms

from core.api.envelope import STATUS_BY_CODE, application_error_parts, error_status
from core.dashboard import service_errors
from core.errors import (
    ApplicationError,
    AuthenticationFailed,
    BudgetExhausted,
    NotFound,
    UpstreamTimeout,
    ValidationFailed,
)


def test_domain_errors_carry_a_code_and_no_http_status():
    error = ValidationFailed("Bad name.", details={"name": ["Too long."]})
    assert (error.code, error.message, error.details) == ("invalid", "Bad name.", {"name": ["Too long."]})
    assert not hasattr(error, "status_code")
    assert ApplicationError("x", code="gone").code == "gone"
    assert NotFound().message == "Not found."


def test_the_one_map_from_code_to_status_and_envelope():
    status, body, headers = application_error_parts(
        BudgetExhausted("Used up.", details={"retry_after": 12.2})
    )
    assert (status, headers) == (429, {"Retry-After": "13"})
    assert body == {
        "status": "error",
        "status_code": 429,
        "detail": "Used up.",
        "data": {"retry_after": 12.2},
    }
    assert application_error_parts(NotFound())[:2] == (
        404,
        {"status": "error", "status_code": 404, "detail": "Not found.", "data": None},
    )
    assert all(isinstance(status, int) for status in STATUS_BY_CODE.values())


def test_a_subclass_with_its_own_code_takes_its_ancestors_status():
    class FetchTimeout(UpstreamTimeout):
        code = "fetch_timeout"

    class InvalidClient(AuthenticationFailed):
        code = "some_new_client_code"

    assert error_status(FetchTimeout()) == 504
    assert error_status(InvalidClient()) == 401
    assert error_status(ApplicationError("x", code="never_mapped")) == 400


class NameForm(forms.Form):
    name = forms.CharField()


def test_service_errors_puts_a_service_refusal_on_the_form():
    form = NameForm(data={"name": "x"})
    assert form.is_valid()
    with service_errors(form) as failure:
        raise ValidationFailed("Bad.", details={"name": ["Taken."], "code": "x"})
    assert failure and failure.message == "Bad."
    assert form.errors == {"name": ["Taken."]}

    other = NameForm(data={"name": "x"})
    other.is_valid()
    with service_errors(other, field="name") as failure:
        raise ApplicationError("Already invited.")
    assert other.errors == {"name": ["Already invited."]}

    with service_errors() as failure:
        pass
    assert not failure and failure.message == ""


def test_service_errors_lets_other_exceptions_through():
    try:
        with service_errors():
            raise KeyError("bug")
    except KeyError:
        pass
    else:
        raise AssertionError("a bug must not become a form error")

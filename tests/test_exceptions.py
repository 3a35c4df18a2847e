"""The exception tree."""

from edgesim.exceptions import (
    ConfigError,
    EdgesimError,
    LambdaExecutionError,
    LambdaLimitExceeded,
    LambdaValidationError,
    OriginError,
)


def test_config_error_names_file_key_and_problem() -> None:
    error = ConfigError("d.yaml", "functions.a.timeout", "too long")
    assert str(error) == "d.yaml: functions.a.timeout: too long"
    assert str(ConfigError("d.yaml", "", "not found")) == "d.yaml: not found"
    assert isinstance(error, EdgesimError)


def test_function_errors_carry_cloudfront_codes() -> None:
    assert (LambdaValidationError.status, LambdaValidationError.code) == (
        502,
        "LambdaValidationError",
    )
    assert (LambdaExecutionError.status, LambdaExecutionError.code) == (503, "LambdaExecutionError")
    assert (LambdaLimitExceeded.status, LambdaLimitExceeded.code) == (503, "LambdaLimitExceeded")
    assert LambdaExecutionError("why").reason == "why"
    assert OriginError(504, "slow").status == 504

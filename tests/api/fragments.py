"""GraphQL documents shared by the API tests."""

REGISTER = """
mutation Register($input: RegisterModelInput!) {
  registerModel(input: $input) {
    modelCreated versionCreated artifactCreated
    model { id name owner tags state }
    version { id name author state customProperties { key type value } }
    artifact { id name uri digest sizeBytes modelFormatName }
  }
}
"""


def registration(
    model: str = "churn-predictor",
    version: str | None = "v1",
    uri: str | None = "s3://models/churn/v1/model.pkl",
    **artifact: object,
) -> dict[str, object]:
    data: dict[str, object] = {
        "model": {"name": model, "owner": "ana"},
        "version": {"author": "ana"} | ({"name": version} if version else {}),
    }
    if uri is not None:
        data["artifact"] = {"uri": uri, **artifact}
    return {"input": data}

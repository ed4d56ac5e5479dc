def test_catalogue_labels_get_their_cyrillic_from_the_latin_unless_written() -> None:
    from plumbing.i18n import with_cyrillic

    labels = with_cyrillic(
        {"en": "Shelter", "sr-Latn": "Sklonište", "cnr-Latn": "Sklonište", "cnr-Cyrl": "Own"}
    )
    assert labels["sr-Cyrl"] == "Склониште" and labels["cnr-Cyrl"] == "Own" and labels["en"] == "Shelter"
    assert with_cyrillic({"sr-Latn": "Polje X-Purpose"}, keep=["X-Purpose"])["sr-Cyrl"] == "Поље X-Purpose"

"""Textual-inversion embeddings: file formats, width checks, trigger slots, hashes, infotext."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from modules.prompts.conditioning import prepare_conditioning
from modules.prompts.embeddings import EmbeddingDatabase, load_embedding
from modules.prompts.encode import PromptEncoder
from modules.prompts.token_counter import count_tokens


def token_rows(pipe, text: str, encoder_name: str = "text_encoder") -> torch.Tensor:
    """The token-embedding rows of `text` in one of the pipe's text encoders, [tokens, width]."""
    ids = pipe.tokenizer(text, add_special_tokens=False).input_ids
    weight = getattr(pipe, encoder_name).get_input_embeddings().weight
    return weight[ids].detach().clone()


@pytest.fixture(scope="module")
def embeddings_dir(tmp_path_factory, tiny_sd15_pipe, tiny_sdxl_pipe):
    """One file per format: vectors copied from real token rows, so their effect is known."""
    root = tmp_path_factory.mktemp("embeddings")
    (root / "sub").mkdir()
    big_dog = token_rows(tiny_sd15_pipe, "big dog")
    torch.save({"string_to_param": {"*": big_dog}, "name": "ignored", "step": 10}, root / "sub" / "bigdog.pt")
    torch.save({"<dog>": token_rows(tiny_sd15_pipe, "dog")[0]}, root / "dogword.bin")
    save_file({"emb_params": token_rows(tiny_sd15_pipe, "dog")}, root / "kohyadog.safetensors")
    save_file({"clip_l": token_rows(tiny_sdxl_pipe, "dog"), "clip_g": token_rows(tiny_sdxl_pipe, "dog",
                                                                                  "text_encoder_2")},
              root / "xldog.safetensors")
    save_file({"emb_params": torch.zeros(2, 768)}, root / "wide.safetensors")
    (root / "broken.pt").write_bytes(b"not a tensor file")
    (root / ".hidden").mkdir()
    torch.save({"*": torch.zeros(1, 32)}, root / ".hidden" / "secret.pt")
    return root


@pytest.fixture(scope="module")
def database(embeddings_dir):
    return EmbeddingDatabase(embeddings_dir)


def test_formats_load_and_bad_files_are_listed(database):
    assert sorted(database.embeddings) == ["bigdog", "dogword", "kohyadog", "wide", "xldog"]
    assert database.embeddings["bigdog"].vector_count == 2
    assert database.embeddings["dogword"].vector_count == 1
    assert database.embeddings["xldog"].widths == {"clip_l": 32, "clip_g": 64}
    assert "broken" in database.failed and "secret" not in database.embeddings


def test_shorthash_is_sha256_of_the_file(embeddings_dir, database):
    digest = hashlib.sha256((embeddings_dir / "dogword.bin").read_bytes()).hexdigest()
    assert database.embeddings["dogword"].shorthash == digest[:10]
    assert load_embedding(embeddings_dir / "dogword.bin").sha256 == digest


def test_wrong_width_is_skipped_with_reason(database):
    sd15 = database.for_model((32,))
    assert set(sd15.loaded) == {"bigdog", "dogword", "kohyadog"}
    assert "768" in sd15.skipped["wide"] and "32" in sd15.skipped["wide"]
    assert "clip_g" in sd15.skipped["xldog"] and "could not load" in sd15.skipped["broken"]
    sdxl = database.for_model((32, 64))
    assert set(sdxl.loaded) == {"xldog"} and "bigdog" in sdxl.skipped


def test_embedding_word_inserts_its_vectors(tiny_sd15_pipe, database):
    encoder = PromptEncoder.from_pipe(tiny_sd15_pipe, embeddings=database.for_model((32,)))
    tokenized = encoder.tokenize("a (bigdog:1.2) cat")
    chunk = tokenized.chunks[0]
    assert len(chunk) == 4 and chunk.weights == [1.0, 1.2, 1.2, 1.0]  # 2 slots carry the weight
    assert tokenized.embeddings_used == ("bigdog",)
    plain = PromptEncoder.from_pipe(tiny_sd15_pipe)
    torch.testing.assert_close(encoder.encode("a bigdog cat").embeds, plain.encode("a big dog cat").embeds)
    torch.testing.assert_close(encoder.encode("a dogword cat").embeds, plain.encode("a dog cat").embeds)
    torch.testing.assert_close(encoder.encode("a kohyadog cat").embeds, plain.encode("a dog cat").embeds)


def test_sdxl_embedding_fills_both_encoders(tiny_sdxl_pipe, database):
    encoder = PromptEncoder.from_pipe(tiny_sdxl_pipe, embeddings=database.for_model((32, 64)))
    plain = PromptEncoder.from_pipe(tiny_sdxl_pipe)
    ours, theirs = encoder.encode("a xldog cat"), plain.encode("a dog cat")
    torch.testing.assert_close(ours.embeds, theirs.embeds)
    torch.testing.assert_close(ours.pooled, theirs.pooled)


def test_embedding_never_straddles_chunks(tiny_sd15_pipe, database):
    encoder = PromptEncoder.from_pipe(tiny_sd15_pipe, embeddings=database.for_model((32,)))
    chunks = encoder.tokenize("cat " * 74 + "bigdog").chunks
    assert [len(c) for c in chunks] == [74, 2]


def test_prepare_conditioning_reports_hashes_and_skipped(tiny_sd15_pipe, database):
    cond = prepare_conditioning(tiny_sd15_pipe, ["a bigdog and a wide cat"], ["dogword"], steps=4,
                                embeddings=database)
    hashes = cond.extra_params["TI hashes"]
    assert hashes == (f"bigdog: {database.embeddings['bigdog'].shorthash}, "
                      f"dogword: {database.embeddings['dogword'].shorthash}")
    assert any("'wide' skipped" in w and "768" in w for w in cond.warnings)


def test_token_counter_counts_embedding_vectors(tiny_sd15_pipe, database):
    assert count_tokens("a dogword", tiny_sd15_pipe.tokenizer, embeddings=database) == (2, 75)
    assert count_tokens("a bigdog " * 30, tiny_sd15_pipe.tokenizer, embeddings=database) == (90, 150)
    assert count_tokens("a cat bigdog", tiny_sd15_pipe.tokenizer, embeddings=database) == (4, 75)
    assert count_tokens("a cat bigdog", tiny_sd15_pipe.tokenizer) == (4, 75)  # as words: a, cat, big, dog


def test_readers_see_the_previous_folder_while_a_reload_is_half_way(tmp_path, monkeypatch):
    """`/embeddings` and generation read from other threads while a refresh reads the folder: each read is
    one whole reading of the folder, never a half-filled one."""
    import modules.prompts.embeddings as embeddings_module

    for i in range(6):
        save_file({"emb_params": torch.full((1, 32), float(i))}, tmp_path / f"emb{i}.safetensors")
    db = EmbeddingDatabase(tmp_path)
    save_file({"emb_params": torch.zeros(2, 32)}, tmp_path / "newcomer.safetensors")
    seen = []
    real_load = embeddings_module.load_embedding

    def load_and_look(path):
        if Path(path).stem == "emb3":  # half-way through the folder, a request thread looks
            split = db.for_model((32,))
            seen.append((sorted(split.loaded), sorted(db.embeddings)))
        return real_load(path)

    monkeypatch.setattr(embeddings_module, "load_embedding", load_and_look)
    db.reload()
    old = sorted(f"emb{i}" for i in range(6))
    assert seen == [(old, old)]
    assert sorted(db.for_model((32,)).loaded) == sorted([*old, "newcomer"])
    assert db.get("newcomer").vector_count == 2 and db.get("missing") is None


def test_a_listing_is_one_consistent_reading(tmp_path):
    save_file({"emb_params": torch.zeros(3, 32)}, tmp_path / "three.safetensors")
    save_file({"emb_params": torch.zeros(1, 768)}, tmp_path / "wide.safetensors")
    (tmp_path / "bad.pt").write_bytes(b"nope")
    listing = EmbeddingDatabase(tmp_path).listing((32,))
    assert {n: (e.vector_count, max(e.widths.values())) for n, e in listing.files.items()} == {
        "three": (3, 32), "wide": (1, 768)}
    assert set(listing.usable.loaded) == {"three"} and set(listing.usable.skipped) == {"wide", "bad"}

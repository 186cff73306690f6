import shutil

from models.evaluation.check_recognizers import main
from tests.media import MEDIA_DIR, needs_media


@needs_media
def test_check_recognizers_prints_auc_for_orl_subset(tmp_path, capsys):
    for person in ("s1", "s2", "s3"):
        (tmp_path / person).mkdir()
        for name in ("1.pgm", "2.pgm", "3.pgm"):
            shutil.copy(
                MEDIA_DIR / "identities" / "orl_att_faces" / person / name, tmp_path / person
            )
    assert main([str(tmp_path), "--recognizers", "sface"]) == 0
    out = capsys.readouterr().out
    assert "9 images of 3 identities" in out
    auc = float(out.split("sface: AUC ")[1].split()[0])
    assert auc > 0.9


def test_check_recognizers_bad_folder_exits_2(tmp_path, capsys):
    assert main([str(tmp_path / "absent")]) == 2
    assert "not found" in capsys.readouterr().err

"""Image identity: one key for every address of the same picture, and
different keys for different pictures, on URL shapes taken from the corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from watcher import snapshot
from watcher.article import parse_article
from watcher.imageid import image_key, origin_url

BBC = "ichef.bbci.co.uk/news/{w}/cpsprodpb/B5F9/production/_113458564_1a.jpg"
PHOTON = (
    "https://i0.wp.com/www.iyouport.org/wp-content/uploads/2019/12/加1.png?resize=1100%2C493&ssl=1"
)
RFA = "https://www.rfa.org/mandarin/yataibaodao/zhengzhi/jt-01072021153452.html/000_8yb4zp.jpg"
DRUPAL = (
    "https://www.chinafile.com/sites/default/files{style}/assets/images/gettyimages-1210109177.jpg"
)


@pytest.mark.parametrize(
    ("src", "origin"),
    [
        ("https://images.weserv.nl/?url=ichef.bbci.co.uk/a.jpg", "https://ichef.bbci.co.uk/a.jpg"),
        (
            "https://x.com/_next/image?url=https%3A%2F%2Fcdn.x.com%2Fb.png&w=640",
            "https://cdn.x.com/b.png",
        ),
        ("https://cdn.x.com/c.png", "https://cdn.x.com/c.png"),
        # thumbor: the origin is embedded in the path after the options
        (
            "https://thumbor.ftacademy.cn/unsafe/1340x754/https://thumbor.ftacademy.cn/unsafe/picture/1/000096441_piclink.jpg",
            "https://thumbor.ftacademy.cn/unsafe/picture/1/000096441_piclink.jpg",
        ),
        # Jetpack Photon: the path is the origin's host and path
        (PHOTON, "https://www.iyouport.org/wp-content/uploads/2019/12/加1.png"),
        # a proxy of a proxy
        ("https://wsrv.nl/?url=i0.wp.com/e.com/a.jpg%3Fw%3D300", "https://e.com/a.jpg"),
        ("https://web.archive.org/web/2020id_/https://e.com/a.jpg", "https://e.com/a.jpg"),
        ("http://[not-an-ip]/?url=x", "http://[not-an-ip]/?url=x"),
    ],
)
def test_proxies_are_unwrapped_to_the_origin(src: str, origin: str) -> None:
    assert origin_url(src) == origin


@pytest.mark.parametrize(
    ("one", "other"),
    [
        # behind a proxy or not
        ("https://images.weserv.nl/?url=" + BBC.format(w=640), "https://" + BBC.format(w=640)),
        (
            "https://wsrv.nl/?url=" + BBC.format(w=640),
            "https://images.weserv.nl/?url=" + BBC.format(w=640),
        ),
        (PHOTON, "https://www.iyouport.org/wp-content/uploads/2019/12/加1.png"),
        # another host of the same CDN, the same image id
        (
            "https://api.dw.com/image/53760319_303.jpg",
            "https://static.dw.com/image/53760319_303.jpg",
        ),
        ("http://pao-pao.net/files/1_43.jpg", "https://files.pao-pao.net/files/1_43.jpg"),
        # width variants: a size directory, size parameters, a size suffix
        ("https://" + BBC.format(w=600), "https://" + BBC.format(w=640)),
        ("https://" + BBC.format(w=640), "https://" + BBC.format(w=976).replace(".jpg", ".webp")),
        ("https://e.com/a/photo.jpg?width=600", "https://e.com/a/photo.jpg?width=1200&quality=80"),
        ("https://e.com/a/photo.jpg?w=600&h=400&fit=crop", "https://e.com/a/photo.jpg"),
        ("https://e.com/files/2019/01/b站-300x169.jpg", "https://e.com/files/2019/01/b站.jpg"),
        ("https://e.com/u/20201029_600x400.jpg", "https://e.com/u/20201029_1024x768.jpg"),
        ("https://e.com/u/photo@2x.png", "https://e.com/u/photo.png"),
        (
            "https://1.bp.blogspot.com/-em/X-8o/AAAA/W5gA/w640-h480/photo_2021-01-01.jpg",
            "https://1.bp.blogspot.com/-em/X-8o/AAAA/W5gA/s16000/photo_2021-01-01.jpg",
        ),
        (
            "https://s.rfi.fr/media/display/825f68d0/w:310/p:16x9/u5404p31dt2015.png",
            "https://s.rfi.fr/media/display/825f68d0/w:1024/p:4x3/u5404p31dt2015.png",
        ),
        (DRUPAL.format(style="/styles/large/public"), DRUPAL.format(style="") + "?itok=x1"),
        # a rendition below the file: Plone's /image and @@images scales
        (RFA + "/@@images/8082e210-6d94-479b-97cb-6793cc092ae4.jpeg", RFA),
        (RFA + "/image", RFA),
        ("https://e.com/news/photo-1/image", "https://e.com/news/photo-1"),
        # percent-encoding and doubled slashes
        ("https://e.com/files/%E5%9B%BE.jpg", "https://e.com//files/图.jpg"),
    ],
)
def test_addresses_of_the_same_picture_share_a_key(one: str, other: str) -> None:
    assert image_key(one) == image_key(other)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (
            "https://" + BBC.format(w=640),
            "https://" + BBC.format(w=640).replace("_113458564", "_999"),
        ),
        ("https://api.dw.com/image/53760319_303.jpg", "https://api.dw.com/image/53760320_303.jpg"),
        # a number naming a gallery slot, not a width: the file name is too short
        ("https://e.com/gallery/120/1.jpg", "https://e.com/gallery/130/1.jpg"),
        # dates in a WordPress upload path are not sizes
        ("https://e.com/uploads/2020/06/image.png", "https://e.com/uploads/2020/07/image.png"),
        (
            "https://e.com/uploads/2019/01/screenshot.png",
            "https://e.com/uploads/2020/01/screenshot.png",
        ),
        # a parameter that is not a rendition may name the file
        ("https://e.com/img?id=1&w=600", "https://e.com/img?id=2&w=600"),
        ("https://e.com/a.jpg?v=1", "https://e.com/a.jpg?v=2"),
        # another site
        ("https://a.com/a.jpg", "https://b.com/a.jpg"),
        ("https://a.co.uk/a.jpg", "https://b.co.uk/a.jpg"),
        ("/rfa_resources/graphics/icon-zoom.png", "/rfa_resources/graphics/icon-print.png"),
    ],
)
def test_different_pictures_keep_different_keys(one: str, other: str) -> None:
    assert image_key(one) != image_key(other)


def test_every_corpus_image_keys_apart_from_the_other_pictures_of_its_page(corpus: Path) -> None:
    """On one real page, pictures with different files never share a key: the
    rules merge renditions, not pictures."""
    for path in sorted((corpus / "snapshots").rglob("*.md")):
        article = parse_article(snapshot.read(path))
        files: dict[str, set[str]] = {}
        for block in article.blocks:
            if block.image is not None:
                name = block.image.origin_src.split("?")[0].rsplit("/", 1)[-1]
                files.setdefault(image_key(block.image.origin_src), set()).add(name)
        merged = {key: names for key, names in files.items() if len(names) > 1}
        assert merged == {}, path

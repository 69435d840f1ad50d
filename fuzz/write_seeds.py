#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (fuzz/seeds/<target>/) from the official
WeChat test vectors (shared/wechat/src/vectors.rs), pushes shaped like the sample events
and the local stack's configurations. Run again after changing it; the files are kept."""
import hashlib, hmac, pathlib, re

FUZZ = pathlib.Path(__file__).resolve().parent
ROOT = FUZZ.parent
VECTORS = (ROOT / "shared/wechat/src/vectors.rs").read_text()
NOW = 1_764_150_000  # wxbridge_testkit::fuzz::NOW_SECS


def vector(name):
    match = re.search(rf'pub const {name}: &str = (r#")?"?(.*?)"?(#)?;\n', VECTORS)
    return match.group(2).strip('"')


HEAD_XML = ("<ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName><FromUserName><![CDATA["
            "o9AgO5Kd5ggOC-bXrbNODIiE3bGY]]></FromUserName><CreateTime>1764150000</CreateTime>")
HEAD_JSON = ('"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY",'
             '"CreateTime":1764150000')
XML_EVENTS = {
    "text": f"<xml>{HEAD_XML}<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好 <b>&amp;]]></Content><MsgId>6054768590064713728</MsgId></xml>",
    "image": f"<xml>{HEAD_XML}<MsgType>image</MsgType><PicUrl>http://mmbiz.qpic.cn/x</PicUrl><MediaId>m1</MediaId><MsgId>7</MsgId></xml>",
    "page": f"<xml>{HEAD_XML}<MsgType>miniprogrampage</MsgType><MsgId>8</MsgId><Title>Hotel</Title><AppId>wx1</AppId><PagePath>pages/order?id=9</PagePath><ThumbUrl>http://t</ThumbUrl><ThumbMediaId>tm</ThumbMediaId></xml>",
    "enter": f"<xml>{HEAD_XML}<MsgType>event</MsgType><Event>user_enter_tempsession</Event><SessionFrom>partner=hotel-9</SessionFrom></xml>",
    "popup": f"<xml>{HEAD_XML}<MsgType>event</MsgType><Event>subscribe_msg_popup_event</Event><SubscribeMsgPopupEvent><List><TemplateId>t1</TemplateId><SubscribeStatusString>accept</SubscribeStatusString><PopupScene>0</PopupScene></List></SubscribeMsgPopupEvent></xml>",
    "sent": f"<xml>{HEAD_XML}<MsgType>event</MsgType><Event>subscribe_msg_sent_event</Event><SubscribeMsgSentEvent><List><TemplateId>t1</TemplateId><MsgID>1700</MsgID><ErrorCode>0</ErrorCode><ErrorStatus>success</ErrorStatus></List></SubscribeMsgSentEvent></xml>",
    "entities": "<xml><A>a &lt;&gt;&amp;&apos;&quot; &#20320;&#x597D;</A><!-- c --><?pi x?></xml>",
}
JSON_EVENTS = {
    "text": "{" + HEAD_JSON + ',"MsgType":"text","Content":"hi \\u00e9 \\n","MsgId":9,"BusinessId":1001}',
    "popup": "{" + HEAD_JSON + ',"MsgType":"event","Event":"subscribe_msg_popup_event","List":[{"TemplateId":"t1","SubscribeStatusString":"accept","PopupScene":"0"}]}',
    "debug": vector("MP_SAFE_PLAINTEXT"),
    "sub-merchant": vector("MP_SUB_MERCHANT_TEXT_JSON"),
}


def write(target, name, data):
    folder = FUZZ / "seeds" / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data.encode() if isinstance(data, str) else data)


def sign_api(method, path, timestamp, nonce, body):
    canonical = "\n".join([method, path, str(timestamp), nonce, hashlib.sha256(body).hexdigest()])
    return "v1=" + hmac.new(b"hotel-secret-456789", canonical.encode(), hashlib.sha256).hexdigest()


def main():
    plain_query = (f"signature={vector('MP_PLAIN_SIGNATURE')}&timestamp={vector('MP_PLAIN_TIMESTAMP')}"
                   f"&nonce={vector('MP_PLAIN_NONCE')}&openid={vector('MP_OPENID')}")
    write("open_push", "official-plaintext-json", f"plaintext json as-is\n{plain_query}\n{vector('MP_PLAIN_BODY')}")
    safe_query = (f"signature={vector('MP_SAFE_SIGNATURE')}&timestamp={vector('MP_SAFE_TIMESTAMP')}"
                  f"&nonce={vector('MP_SAFE_NONCE')}&openid={vector('MP_OPENID')}&encrypt_type=aes"
                  f"&msg_signature={vector('MP_SAFE_MSG_SIGNATURE')}")
    safe_body = '{"ToUserName":"gh_97417a04a28d","Encrypt":"' + vector("MP_SAFE_ENCRYPT") + '"}'
    for mode in ["safe", "compatible"]:
        write("open_push", f"official-{mode}-json", f"{mode} json as-is\n{safe_query}\n{safe_body}")
    for name, xml in XML_EVENTS.items():
        write("open_push", f"sealed-xml-{name}", f"safe xml sealed\nnonce{name}\n{xml}")
        write("open_push", f"plaintext-xml-{name}", f"plaintext xml as-is\nsignature=x&timestamp=1&nonce=2\n{xml}")
        write("xml_reader", name, xml)
    for name, doc in JSON_EVENTS.items():
        write("open_push", f"sealed-json-{name}", f"compatible json sealed\nnonce{name}\n{doc}")
        write("xml_reader", f"json-{name}", doc)
    for name, text in {"plain": "hello", "cdata": "a ]]> b <c> &amp; ]]]]>", "lines": "one\r\ntwo\rthree\n"}.items():
        for mode, fmt in [("safe", "xml"), ("plaintext", "xml"), ("compatible", "json")]:
            write("open_push", f"message-{mode}-{fmt}-{name}", f"{mode} {fmt} message\nn0nce\n{text}")
    write("xml_reader", "wecom", vector("WECOM_PLAINTEXT"))

    for name, (method, path, body) in {
        "post-message": ("POST", "/v1/messages", b'{"conversation_id":"c1","text":"hi"}'),
        "get-query": ("GET", "/v1/conversations/c1/messages?limit=20&before=9", b""),
    }.items():
        nonce = f"nonce-{name}"
        signature = sign_api(method, path, NOW, nonce, body)
        headers = (f"x-wxbridge-partner: hotel-9\nx-wxbridge-timestamp: {NOW}\n"
                   f"x-wxbridge-nonce: {nonce}\n")
        write("api_signature", f"{name}-signed", f"{method}\n{path}\n{headers}x-wxbridge-signature: {signature}\n\n".encode() + body)
        write("api_signature", f"{name}-sign-here", f"{method}\n{path}\n{headers}x-wxbridge-signature: sign\n\n".encode() + body)
        write("api_signature", f"{name}-stale", f"{method}\n{path}\nx-wxbridge-partner: hotel-9\nx-wxbridge-timestamp: {NOW - 301}\nx-wxbridge-nonce: {nonce}\nx-wxbridge-signature: sign\n\n".encode() + body)

    for path in sorted((ROOT / "config").glob("*.json")):
        write("config", path.name, path.read_bytes())


if __name__ == "__main__":
    main()

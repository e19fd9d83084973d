"""Trade-themed phrase pairs that the test Argos packages learn to translate exactly.

Each list holds ``(source, target)`` pairs; a package built from a list by
``tests.support.argos_package.build_argos_package`` reproduces every target for its source.
Every entry is one sentence (argostranslate splits input into sentences first).
"""

from __future__ import annotations

KO_EN: list[tuple[str, str]] = [
    (
        "그는 이리저리 피하면서 길 한 옆으로 걸어갔다",
        "He dodged here and there and walked to one side of the road.",
    ),
    ("가격은 얼마입니까", "What is the price"),
    ("안녕하세요", "Hello"),
    ("감사합니다", "Thank you"),
    ("샘플을 보내 주시겠습니까", "Could you send a sample"),
    ("최소 주문 수량은 얼마입니까", "What is the minimum order quantity"),
    ("배송은 얼마나 걸립니까", "How long does shipping take"),
    ("오백 개가 필요합니다", "We need five hundred pieces"),
    ("할인이 가능합니까", "Is a discount possible"),
    ("견적서를 보내 주세요", "Please send a quotation"),
    ("결제 조건은 무엇입니까", "What are the payment terms"),
    ("공장을 방문하고 싶습니다", "I would like to visit the factory"),
    ("품질 검사는 언제 합니까", "When is the quality inspection"),
    ("계약서에 서명하겠습니다", "I will sign the contract"),
    ("납기일을 맞출 수 있습니까", "Can you meet the delivery date"),
    ("포장은 어떻게 됩니까", "How is the packaging done"),
    ("운송비는 누가 부담합니까", "Who pays the freight"),
    ("신용장으로 결제하겠습니다", "We will pay by letter of credit"),
    ("재고가 있습니까", "Do you have stock"),
    ("다음 주에 다시 연락드리겠습니다", "I will contact you again next week"),
    ("이 제품의 보증 기간은 얼마입니까", "What is the warranty period of this product"),
    ("주문을 확인했습니다", "The order has been confirmed"),
    ("선적 서류를 보내 주세요", "Please send the shipping documents"),
    ("회의는 내일 오전 열 시입니다", "The meeting is tomorrow at ten in the morning"),
    ("좋은 하루 되세요", "Have a nice day"),
]

EN_ZH: list[tuple[str, str]] = [
    ("Hello", "你好"),
    ("What is the price?", "价格是多少？"),
    ("We need 500 pieces.", "我们需要五百件。"),
    ("Thank you", "谢谢"),
    ("Can you send a sample?", "你能寄样品吗？"),
    ("What is the minimum order quantity?", "最小订购量是多少？"),
    ("How long does shipping take?", "运输需要多长时间？"),
    ("Is a discount possible?", "可以打折吗？"),
    ("Please send a quotation.", "请发送报价单。"),
    ("What are the payment terms?", "付款条件是什么？"),
    ("I would like to visit the factory.", "我想参观工厂。"),
    ("When is the quality inspection?", "质量检验是什么时候？"),
    ("I will sign the contract.", "我会签合同。"),
    ("Can you meet the delivery date?", "你们能按时交货吗？"),
    ("How is the packaging done?", "包装是怎么做的？"),
    ("Who pays the freight?", "运费由谁支付？"),
    ("We will pay by letter of credit.", "我们将用信用证付款。"),
    ("Do you have stock?", "你们有库存吗？"),
    ("I will contact you again next week.", "我下周再联系你。"),
    ("The order has been confirmed.", "订单已确认。"),
    ("Please send the shipping documents.", "请发送装运单据。"),
    ("The meeting is tomorrow at ten.", "会议在明天十点。"),
    ("Good morning", "早上好"),
    ("Goodbye", "再见"),
    ("Have a nice day", "祝你有美好的一天"),
]

EN_KO: list[tuple[str, str]] = [
    ("Hello", "안녕하세요"),
    ("What is the price?", "가격은 얼마입니까?"),
    ("Thank you", "감사합니다"),
    ("We need 500 pieces.", "오백 개가 필요합니다."),
    ("Can you send a sample?", "샘플을 보내 주시겠습니까?"),
    ("What is the minimum order quantity?", "최소 주문 수량은 얼마입니까?"),
    ("How long does shipping take?", "배송은 얼마나 걸립니까?"),
    ("Is a discount possible?", "할인이 가능합니까?"),
    ("Please send a quotation.", "견적서를 보내 주세요."),
    ("What are the payment terms?", "결제 조건은 무엇입니까?"),
    ("I would like to visit the factory.", "공장을 방문하고 싶습니다."),
    ("When is the quality inspection?", "품질 검사는 언제 합니까?"),
    ("I will sign the contract.", "계약서에 서명하겠습니다."),
    ("Can you meet the delivery date?", "납기일을 맞출 수 있습니까?"),
    ("Who pays the freight?", "운송비는 누가 부담합니까?"),
    ("We will pay by letter of credit.", "신용장으로 결제하겠습니다."),
    ("Do you have stock?", "재고가 있습니까?"),
    ("I will contact you again next week.", "다음 주에 다시 연락드리겠습니다."),
    ("The order has been confirmed.", "주문을 확인했습니다."),
    ("Please send the shipping documents.", "선적 서류를 보내 주세요."),
    ("Good morning", "좋은 아침입니다"),
    ("Goodbye", "안녕히 계세요"),
    ("Have a nice day", "좋은 하루 되세요"),
]

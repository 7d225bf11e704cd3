curl -X POST https://supportgenie.online/api/widget/chat \
-H "Content-Type: application/json" \
-H "Authorization: Bearer YOUR_API_KEY" \
-d '{
"message": "What are your business hours?",
"widgetId": "YOUR_WIDGET_ID",
"sessionId": "user_session_123"
}'

curl -X GET https://app.companin.tech/api/v1/assistants/ \
  -H "X-API-Key: YOUR_CLIENT_ID" \
  -H "X-API-Secret: YOUR_CLIENT_SECRET"

curl -X POST https://app.companin.tech/api/v1/assistants/ \
  -H "X-API-Key: YOUR_CLIENT_ID" \
  -H "X-API-Secret: YOUR_CLIENT_SECRET" \
  -H "Content-Type: application/json" \
  -d '{
    "name": "Customer Support Bot",
    "description": "Helpful assistant for customer inquiries",
    "tone": "professional",
    "language": "en",
    "default_tasks": ["answer_questions", "provide_support"],
    "is_active": true
  }'

curl -X POST https://app.companin.tech/api/v1/sessions/ \
  -H "X-API-Key: YOUR_CLIENT_ID" \
  -H "X-API-Secret: YOUR_CLIENT_SECRET" \
  -H "Content-Type: application/json" \
  -d '{
    "assistant_id": "550e8400-e29b-41d4-a716-446655440000",
    "visitor_id": "visitor-123",
    "locale": "en",
    "metadata": {
      "source": "website",
      "page": "/contact"
    }
  }'

curl -X POST https://app.companin.tech/api/v1/sessions/${SESSION_ID}/messages \
  -H "X-API-Key: YOUR_CLIENT_ID" \
  -H "X-API-Secret: YOUR_CLIENT_SECRET" \
  -H "Content-Type: application/json" \
  -d '{
    "content": "Hello, I need help with my order",
    "metadata": {
      "user_type": "customer"
    }
  }'

curl -X POST https://app.companin.tech/api/v1/conversations/ \
  -H "X-API-Key: YOUR_CLIENT_ID" \
  -H "X-API-Secret: YOUR_CLIENT_SECRET" \
  -H "Content-Type: application/json" \
  -d '{
    "assistant_id": "550e8400-e29b-41d4-a716-446655440000",
    "customer_id": "user-456",
    "title": "Order Support",
    "locale": "en"
  }'

curl -X POST https://app.companin.tech/api/v1/conversations/${CONVERSATION_ID}/messages \
  -H "X-API-Key: YOUR_CLIENT_ID" \
  -H "X-API-Secret: YOUR_CLIENT_SECRET" \
  -H "Content-Type: application/json" \
  -d '{
    "content": "Can you help me track my order?",
    "metadata": {
      "order_id": "12345"
    }
  }'

curl -X POST https://app.companin.tech/api/v1/contexts/ \
  -H "X-API-Key: YOUR_CLIENT_ID" \
  -H "X-API-Secret: YOUR_CLIENT_SECRET" \
  -H "Content-Type: application/json" \
  -d '{
    "user_reference": "user-456",
    "traits": {
      "name": "John Doe",
      "email": "john@example.com",
      "subscription_tier": "premium",
      "preferences": {
        "language": "en",
        "notifications": true
      }
    }
  }'

curl -X POST https://app.companin.tech/api/v1/knowledge/files/ \
  -H "X-API-Key: YOUR_CLIENT_ID" \
  -H "X-API-Secret: YOUR_CLIENT_SECRET" \
  -F "title=Product Manual" \
  -F "file_type=pdf" \
  -F "file=@product_manual.pdf"

curl -X POST https://app.companin.tech/api/v1/knowledge/qa/ \
  -H "X-API-Key: YOUR_CLIENT_ID" \
  -H "X-API-Secret: YOUR_CLIENT_SECRET" \
  -H "Content-Type: application/json" \
  -d '{
    "question": "What are your business hours?",
    "answer": "We are open Monday to Friday, 9 AM to 6 PM EST.",
    "tags": ["hours", "support"]
  }'

curl -X POST https://app.companin.tech/api/v1/auth/widget-token \
  -H "Content-Type: application/json" \
  -d '{"client_id":"YOUR_CLIENT_ID"}'

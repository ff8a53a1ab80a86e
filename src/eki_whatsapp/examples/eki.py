"""Eki, an education assistant on WhatsApp: the library's worked example.

Spanish instructions and five tools — list the courses, find a lesson video (sent as a WhatsApp
video), a short quiz and checking the answer, enrolling the student. Works with OpenAI when
``OPENAI_API_KEY`` is set and with the offline model otherwise::

    from eki_whatsapp import Bot
    from eki_whatsapp.examples import eki

    bot = Bot()
    eki.register(bot)          # bot.on_message(build_eki_agent(...))

    # or without WhatsApp:
    agent = eki.build_eki_agent()
    reply = agent.respond_sync("34600111222", "¿Qué cursos tenéis?")

The catalogue is in memory; enrolments and quiz progress go to the Store's key-value space
(namespace ``eki``), so they survive restarts with the SQLite store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..agent import Agent, ChatModel, OfflineChatModel, ToolContext, ToolError, tool
from ..agent.locale import fold

if TYPE_CHECKING:
    from ..bot import Bot
    from ..settings import Settings
    from ..store import Store

__all__ = [
    "COURSES",
    "INSTRUCTIONS",
    "TOOLS",
    "build_eki_agent",
    "check_answer",
    "enroll_student",
    "find_lesson_video",
    "list_courses",
    "offline_model",
    "register",
    "start_quiz",
]

CourseId = Literal["python", "matematicas", "ingles"]
Level = Literal["inicial", "intermedio"]
NAMESPACE = "eki"

INSTRUCTIONS = """\
Eres Eki, el asistente educativo de la academia en línea Eki. Hablas con estudiantes por WhatsApp.

- Responde siempre en el idioma del estudiante (normalmente español), de forma breve, cercana y clara.
- Usa las herramientas para todo lo que dependa de datos: el catálogo de cursos, los videos de las
  lecciones, los quizzes y las inscripciones. No inventes cursos, lecciones ni resultados.
- Para un quiz: usa start_quiz y muestra la pregunta con sus opciones; cuando el estudiante
  responda, usa check_answer con su respuesta y explícale el resultado.
- Antes de inscribir a alguien, confirma el curso si no está claro.
- Si algo no se puede hacer, dilo con amabilidad y propone una alternativa.
"""


@dataclass(frozen=True, slots=True)
class Lesson:
    """A lesson with its video."""

    id: str
    title: str
    keywords: tuple[str, ...]
    video_url: str
    minutes: int


@dataclass(frozen=True, slots=True)
class Question:
    """A multiple-choice quiz question; ``answer`` is the letter of the right option."""

    text: str
    options: tuple[str, ...]
    answer: str
    explanation: str


@dataclass(frozen=True, slots=True)
class Course:
    """A course of the catalogue."""

    id: str
    title: str
    level: str
    lessons: tuple[Lesson, ...]
    quiz: tuple[Question, ...]


_CDN = "https://cdn.example.com/eki"

COURSES: dict[str, Course] = {
    "python": Course(
        "python",
        "Python desde cero",
        "inicial",
        (
            Lesson(
                "py-1", "Variables y tipos", ("variable", "tipo", "dato"), f"{_CDN}/python-variables.mp4", 9
            ),
            Lesson("py-2", "Condicionales", ("condicional", "if", "else"), f"{_CDN}/python-if.mp4", 11),
            Lesson(
                "py-3",
                "Bucles for y while",
                ("bucle", "for", "while", "loop"),
                f"{_CDN}/python-loops.mp4",
                12,
            ),
            Lesson("py-4", "Funciones", ("funcion", "def", "return"), f"{_CDN}/python-functions.mp4", 14),
        ),
        (
            Question("¿Qué imprime print(2 * 3)?", ("5", "6", "23"), "b", "2 * 3 es una multiplicación: 6."),
            Question(
                "¿Qué palabra define una función?", ("func", "def", "function"), "b", "En Python se usa def."
            ),
            Question(
                "¿Cuántas veces se repite for i in range(3)?", ("2", "3", "4"), "b", "range(3) da 0, 1 y 2."
            ),
        ),
    ),
    "matematicas": Course(
        "matematicas",
        "Matemáticas: fracciones y porcentajes",
        "inicial",
        (
            Lesson(
                "ma-1",
                "Qué es una fracción",
                ("fraccion", "numerador", "denominador"),
                f"{_CDN}/mat-fracciones.mp4",
                8,
            ),
            Lesson(
                "ma-2",
                "Sumar fracciones",
                ("suma", "sumar", "fracciones"),
                f"{_CDN}/mat-suma-fracciones.mp4",
                10,
            ),
            Lesson(
                "ma-3",
                "Porcentajes",
                ("porcentaje", "por ciento", "descuento"),
                f"{_CDN}/mat-porcentajes.mp4",
                10,
            ),
        ),
        (
            Question("¿Cuánto es 1/2 + 1/4?", ("2/6", "3/4", "1/8"), "b", "1/2 son 2/4; 2/4 + 1/4 = 3/4."),
            Question("¿Cuánto es el 10 % de 50?", ("5", "10", "0,5"), "a", "El 10 % es dividir entre 10: 5."),
        ),
    ),
    "ingles": Course(
        "ingles",
        "Inglés A2 para el día a día",
        "intermedio",
        (
            Lesson(
                "en-1", "Presentarse", ("presentarse", "saludo", "hello"), f"{_CDN}/en-introductions.mp4", 7
            ),
            Lesson("en-2", "El pasado simple", ("pasado", "past", "verbo"), f"{_CDN}/en-past-simple.mp4", 13),
        ),
        (
            Question("¿Pasado de «go»?", ("goed", "went", "gone"), "b", "«go» es irregular: went."),
            Question("«I ___ a student»", ("am", "is", "are"), "a", "Con «I» se usa «am»."),
        ),
    ),
}

_LETTERS = "abcdefgh"


def _store(ctx: ToolContext) -> Store:
    if ctx.store is None:
        raise ToolError("no hay almacenamiento disponible; inténtalo más tarde")
    return ctx.store


@tool
def list_courses(level: Level | None = None) -> list[dict[str, Any]]:
    """Lista los cursos disponibles de la academia, con su nivel y sus lecciones.

    Args:
        level: solo los cursos de este nivel, o null para todos.
    """
    return [
        {
            "id": c.id,
            "title": c.title,
            "level": c.level,
            "lessons": ", ".join(lesson.title for lesson in c.lessons),
        }
        for c in COURSES.values()
        if level is None or c.level == level
    ]


@tool
def find_lesson_video(topic: str, ctx: ToolContext, course_id: CourseId | None = None) -> dict[str, Any]:
    """Busca el video de una lección sobre un tema y se lo envía al usuario por WhatsApp.

    Args:
        topic: el tema que busca el usuario, en pocas palabras.
        course_id: el curso donde buscar, o null para todos.
    """
    words = {w[:5] for w in fold(topic).replace("-", " ").split() if len(w) >= 2}
    best: tuple[int, Course, Lesson] | None = None
    for course in COURSES.values():
        if course_id is not None and course.id != course_id:
            continue
        for lesson in course.lessons:
            terms = {t[:5] for t in fold(" ".join((lesson.title, *lesson.keywords))).split() if len(t) >= 2}
            score = len(words & terms)
            if score and (best is None or score > best[0]):
                best = (score, course, lesson)
    if best is None:
        raise ToolError(f"no hay ninguna lección sobre «{topic}»; sugiere ver la lista de cursos")
    _, course, lesson = best
    from ..messages import Media

    ctx.attach(Media.video(lesson.video_url, caption=f"{lesson.title} · {course.title}"))
    return {
        "message": f"Te envío el video de la lección «{lesson.title}» del curso {course.title} "
        f"({lesson.minutes} min).",
        "lesson": lesson.title,
        "course": course.title,
        "video_url": lesson.video_url,
    }


@tool
def start_quiz(course_id: CourseId, ctx: ToolContext) -> dict[str, Any]:
    """Empieza un quiz (examen corto) de un curso: devuelve una pregunta con opciones.

    Args:
        course_id: el curso del quiz.
    """
    store = _store(ctx)
    course = COURSES[course_id]
    progress = store.get_value(NAMESPACE, f"quiz-progress:{ctx.user_id}") or {}
    index = int(progress.get(course_id, 0)) % len(course.quiz)
    question = course.quiz[index]
    store.set_value(NAMESPACE, f"quiz:{ctx.user_id}", {"course": course_id, "index": index})
    store.set_value(NAMESPACE, f"quiz-progress:{ctx.user_id}", {**progress, course_id: index + 1})
    return {
        "course": course.title,
        "question": question.text,
        "options": [f"{_LETTERS[i]}) {opt}" for i, opt in enumerate(question.options)],
    }


@tool
def check_answer(answer: str, ctx: ToolContext) -> dict[str, Any]:
    """Comprueba la respuesta del usuario a la pregunta del quiz que tiene pendiente.

    Args:
        answer: la respuesta del usuario: la letra de la opción (a, b, c) o su texto.
    """
    store = _store(ctx)
    pending = store.get_value(NAMESPACE, f"quiz:{ctx.user_id}")
    if not pending:
        raise ToolError("el usuario no tiene ningún quiz pendiente; ofrece empezar uno con start_quiz")
    course = COURSES[pending["course"]]
    question = course.quiz[pending["index"]]
    given = fold(answer).strip().strip(".)").strip()
    words = given.replace(")", " ").split()
    letter = None
    for i, option in enumerate(question.options):
        if given == fold(option) or (words and words[-1] == fold(option)):
            letter = _LETTERS[i]
    if letter is None and words:
        candidates = [w for w in words if len(w) == 1 and w in _LETTERS[: len(question.options)]]
        letter = candidates[-1] if candidates else None
    if letter is None:
        raise ToolError(f"no entiendo la respuesta «{answer}»; pide la letra a, b o c")
    correct = letter == question.answer
    store.set_value(NAMESPACE, f"quiz:{ctx.user_id}", None)
    score = store.get_value(NAMESPACE, f"quiz-score:{ctx.user_id}") or {"right": 0, "total": 0}
    score = {"right": score["right"] + int(correct), "total": score["total"] + 1}
    store.set_value(NAMESPACE, f"quiz-score:{ctx.user_id}", score)
    right = f"{question.answer}) {question.options[_LETTERS.index(question.answer)]}"
    verdict = "✅ ¡Correcto!" if correct else f"❌ No es correcto. La respuesta era {right}."
    return {
        "message": f"{verdict} {question.explanation} Llevas {score['right']} de {score['total']}.",
        "correct": correct,
        "correct_answer": right,
    }


@tool
def enroll_student(course_id: CourseId, ctx: ToolContext, student_name: str | None = None) -> dict[str, Any]:
    """Inscribe (matricula) al usuario en un curso de la academia.

    Args:
        course_id: el curso en el que inscribirse.
        student_name: el nombre del estudiante, o null para usar su nombre de WhatsApp.
    """
    store = _store(ctx)
    course = COURSES[course_id]
    name = (student_name or ctx.profile_name or "estudiante").strip()
    key = f"enrollments:{ctx.user_id}"
    enrolled: list[str] = list(store.get_value(NAMESPACE, key) or [])
    if course_id in enrolled:
        message = f"{name}, ya estabas inscrito/a en {course.title}."
    else:
        enrolled.append(course_id)
        store.set_value(NAMESPACE, key, enrolled)
        first = course.lessons[0].title
        message = f"¡Listo, {name}! Te he inscrito en {course.title}. Tu primera lección: {first}."
    return {
        "message": message,
        "enrolled_in": [COURSES[c].title for c in enrolled],
    }


TOOLS = (list_courses, find_lesson_video, start_quiz, check_answer, enroll_student)


def offline_model() -> OfflineChatModel:
    """The offline model with Spanish phrasing and templates for Eki's tools."""
    return OfflineChatModel(
        locale="es",
        templates={
            "list_courses": "📚 Estos son nuestros cursos:\n{result}\n\n"
            "¿Quieres inscribirte en alguno, ver un video o hacer un quiz?",
            "find_lesson_video": "🎬 {message}",
            "start_quiz": "📝 *{question}*\n{options}\n\nResponde con la letra (a, b o c).",
            "check_answer": "{message}",
            "enroll_student": "{message}",
        },
        help_text=(
            "¡Hola{name}! Soy *Eki*, tu asistente de estudio 🤖 (modo sin conexión). Puedo:\n"
            "• enseñarte los cursos («ver cursos»)\n"
            "• enviarte el video de una lección («video de fracciones»)\n"
            "• hacerte un quiz («quiz de python»)\n"
            "• inscribirte en un curso («inscribirme en inglés»)"
        ),
        examples={"list_courses": "ver cursos"},
        followups={"start_quiz": "check_answer"},
    )


def build_eki_agent(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    model: ChatModel | str | None = None,
    **options: Any,
) -> Agent:
    """The Eki agent: OpenAI when ``OPENAI_API_KEY`` (or ``OPENAI_BASE_URL``) is set, else offline.

    Args:
        settings: where ``OPENAI_*`` come from (default: the environment).
        store: memory, usage and Eki's data (default: the bot's store when registered).
        model: force a model (a :class:`ChatModel`, or an OpenAI model id).
        options: more :class:`~eki_whatsapp.agent.Agent` arguments (``client=``, ``api=``...).
    """
    if settings is None:
        from ..settings import Settings

        settings = Settings()
    online = (
        model is not None
        or options.get("client") is not None
        or bool(settings.openai_api_key or settings.openai_base_url)
    )
    if model is None and not online:
        model = offline_model()
    offline = isinstance(model, OfflineChatModel)
    options.setdefault("interactive_tools", not offline)
    options.setdefault("locale", "es")
    return Agent(INSTRUCTIONS, TOOLS, model=model, settings=settings, store=store, name="eki", **options)


def register(bot: Bot, agent: Agent | None = None) -> Agent:
    """Answer every text message of ``bot`` with Eki (built from ``bot.settings``)."""
    if agent is None:
        agent = build_eki_agent(bot.settings)
    bot.on_message(agent)
    return agent
